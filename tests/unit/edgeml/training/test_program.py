"""`main()`: exit codes and the termination log, end to end with MLflow replaced."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgeml.training import program, tracking
from edgeml.training.program import main, summary_line
from edgeml.training.tracking import RegisteredVersion, RunRecord


def _run(config: dict[str, Any] | str, tmp_path: Path) -> tuple[int, str]:
    text = config if isinstance(config, str) else json.dumps(config)
    log = tmp_path / "termination-log"
    code = main(["--config-json", text, "--termination-log", str(log)])
    return code, log.read_text()


@pytest.fixture(autouse=True)
def no_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad inputs fail before MLflow: a test reaching it would fail loudly."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture
def csv_uri(data: Any, tmp_path: Path) -> str:
    return str(data.write(data.classification(rows=120), tmp_path / "d.csv"))


class FakeRegistry:
    """Stands in for tracking.find_version / log_and_register."""

    def __init__(self) -> None:
        self.records: list[RunRecord] = []
        self.existing: RegisteredVersion | None = None

    def find_version(self, config: Any) -> RegisteredVersion | None:
        return self.existing

    def log_and_register(self, config: Any, record: RunRecord) -> RegisteredVersion:
        self.records.append(record)
        return RegisteredVersion(
            name=config.registered_model,
            version=3,
            run_id="run-abc",
            sha256="f" * 64,
            dataset_sha256=record.dataset_sha256,
            metrics=record.metrics,
        )


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> FakeRegistry:
    fake = FakeRegistry()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    monkeypatch.setattr(tracking, "find_version", fake.find_version)
    monkeypatch.setattr(tracking, "log_and_register", fake.log_and_register)
    return fake


# --- bad inputs: exit 2 with the reason, before MLflow -----------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"estimator": "os.system"}, "EstimatorNotAllowed: module os is not in the allow-list"),
        ({"estimator": "sklearn.ensemble.NoSuchThing"}, "UnknownEstimator: "),
        ({"params": {"no_such_param": 1}}, "InvalidParams: "),
        ({"target": "y"}, "MissingTarget: column 'y' is not in the dataset"),
        ({"evaluation": {"metrics": ["rmse"]}}, "InvalidConfig: evaluation.metrics rmse"),
        ({"dataset": {"features": ["f0", "nope"]}}, "MissingFeature: "),
    ],
)
def test_user_errors_exit_2_with_the_reason(
    data: Any, csv_uri: str, tmp_path: Path, change: dict[str, Any], expected: str
) -> None:
    code, line = _run(data.config(csv_uri, **change), tmp_path)
    assert code == 2
    assert line.startswith(expected)
    assert "\n" not in line


def test_missing_dataset(data: Any, tmp_path: Path) -> None:
    uri = (tmp_path / "v.csv").as_uri()
    assert _run(data.config(uri), tmp_path) == (2, f"DatasetNotFound: {uri} does not exist")


def test_non_numeric_feature(data: Any, tmp_path: Path) -> None:
    frame = data.classification(rows=40)
    frame["site"] = "north"
    code, line = _run(data.config(data.write(frame, tmp_path / "d.csv")), tmp_path)
    assert code == 2
    assert line == (
        "NonNumericFeature: column 'site' is not numeric (for example 'north'); "
        "declare it in dataset.categorical"
    )


def test_invalid_config(tmp_path: Path) -> None:
    code, line = _run('{"registeredModel": "m"}', tmp_path)
    assert code == 2
    assert line.startswith("InvalidConfig: ")


def test_missing_config_file(tmp_path: Path) -> None:
    log = tmp_path / "log"
    code = main(["--config", str(tmp_path / "nope.json"), "--termination-log", str(log)])
    assert code == 2
    assert log.read_text().startswith("InvalidConfig: cannot read the config file")


def test_bad_arguments_are_reported_in_the_termination_log(tmp_path: Path) -> None:
    log = tmp_path / "log"
    assert main(["--config-json", "{}", "--config", "x", "--termination-log", str(log)]) == 2
    assert log.read_text() == (
        "InvalidArguments: argument --config: not allowed with argument --config-json"
    )


def test_unwritable_termination_log_goes_to_stderr(capsys: Any) -> None:
    code = main(["--config-json", "[]", "--termination-log", "/nonexistent/dir/log"])
    assert code == 2
    err = capsys.readouterr().err
    assert "cannot write the termination log" in err
    assert "InvalidConfig: " in err


def test_mlflow_location_is_required(data: Any, csv_uri: str, tmp_path: Path) -> None:
    code, line = _run(data.config(csv_uri), tmp_path)
    assert code == 2
    assert line == (
        "InvalidConfig: MLFLOW_TRACKING_URI is not set; the Job must name the MLflow server"
    )


class _Failing(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(502)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def failing_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v.csv"
    server.shutdown()
    server.server_close()


def test_dataset_server_errors_exit_3(data: Any, failing_server: str, tmp_path: Path) -> None:
    code, line = _run(data.config(failing_server), tmp_path)
    assert code == 3
    assert line == f"DatasetUnavailable: {failing_server} answered HTTP 502"


# --- the whole program with MLflow replaced ---------------------------------------------


def test_success_writes_the_summary(data: Any, tmp_path: Path, registry: FakeRegistry) -> None:
    frame = data.classification(rows=200)
    frame["site"] = ["a", "b"] * 100
    frame["kind"] = ["x", "y", "z", "x"] * 50
    config = data.config(
        data.write(frame, tmp_path / "d.parquet"),
        estimator="sklearn.ensemble.RandomForestClassifier",
        params={"n_estimators": 10},
        dataset={"format": "parquet", "sliceColumn": "site", "categorical": ["kind"]},
        evaluation={"metrics": ["accuracy", "f1", "roc_auc"]},
    )
    code, line = _run(config, tmp_path)
    assert code == 0, line
    summary = json.loads(line)
    assert summary["modelVersion"] == 3
    assert summary["modelUri"] == "models:/unit-model/3"
    assert summary["runId"] == "run-abc"
    assert set(summary["metrics"]) >= {"accuracy", "f1", "roc_auc", "slice_gap_f1", "slice.a.f1"}
    (record,) = registry.records
    assert summary["datasetSha256"] == record.dataset_sha256
    assert record.params["estimator.random_state"] == 0
    assert record.params["dataset.features"] == "f0,f1,f2,f3,f4,kind=x,kind=y,kind=z"
    assert record.input_example.shape == (5, 8)
    assert record.baseline["rows"] == 160
    assert record.baseline["encoding"]["categorical"] == {"kind": ["x", "y", "z"]}
    assert record.profile["recommended"]["memory"].endswith("Mi")
    assert record.training_metrics["training.test_rows"] == 40


def test_regressor_with_the_default_metrics(
    data: Any, tmp_path: Path, registry: FakeRegistry
) -> None:
    uri = data.write(data.regression(rows=100), tmp_path / "r.csv")
    config = data.config(
        uri, target="target", estimator="sklearn.ensemble.GradientBoostingRegressor"
    )
    code, line = _run(config, tmp_path)
    assert code == 0, line
    assert set(json.loads(line)["metrics"]) == {"rmse", "mae", "r2"}


def test_conversion_failure_exits_2(
    data: Any, csv_uri: str, tmp_path: Path, registry: FakeRegistry
) -> None:
    config = data.config(csv_uri, estimator="sklearn.semi_supervised.LabelSpreading")
    code, line = _run(config, tmp_path)
    assert code == 2
    assert line.startswith(
        "ConversionFailed: skl2onnx cannot convert sklearn.semi_supervised.LabelSpreading"
    )
    assert registry.records == []


def test_an_earlier_attempts_version_is_reported_without_training(
    data: Any, csv_uri: str, tmp_path: Path, registry: FakeRegistry
) -> None:
    registry.existing = RegisteredVersion(
        "unit-model", 7, "run-old", "a" * 64, "b" * 64, {"f1": 0.9}
    )
    code, line = _run(data.config(csv_uri), tmp_path)
    assert code == 0
    assert json.loads(line) == {
        "runId": "run-old",
        "modelVersion": 7,
        "modelUri": "models:/unit-model/7",
        "sha256": "a" * 64,
        "datasetSha256": "b" * 64,
        "metrics": {"f1": 0.9},
    }
    assert registry.records == []


def test_a_bug_exits_1_with_internal_error(
    data: Any, csv_uri: str, tmp_path: Path, registry: FakeRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("surprise")

    monkeypatch.setattr(program.baseline, "build_baseline", broken)
    assert _run(data.config(csv_uri), tmp_path) == (1, "InternalError: KeyError: 'surprise'")


def test_summary_drops_slice_metrics_first_to_fit() -> None:
    metrics = {"f1": 0.9, "slice_gap_f1": 0.1}
    metrics.update({f"slice.site-{i:04d}.f1": 0.5 for i in range(500)})
    version = RegisteredVersion("m", 1, "r", "a" * 64, "b" * 64, metrics)
    line = summary_line(version)
    assert len(line.encode()) <= 4000
    kept = json.loads(line)["metrics"]
    assert kept["f1"] == 0.9
    assert kept["slice_gap_f1"] == 0.1
    assert 0 < len(kept) < len(metrics)

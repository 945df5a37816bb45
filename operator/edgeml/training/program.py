"""`edgeml train`: the program a training Job runs, from config to registered version.

    edgeml train (--config PATH | --config-json JSON) [--termination-log PATH]

MLflow is found through MLFLOW_TRACKING_URI. An http(s) dataset is fetched with the
`Authorization` header from EDGEML_DATASET_AUTHORIZATION when that is set; an s3://
dataset is signed with EDGEML_DATASET_AWS_ACCESS_KEY_ID and _SECRET_ACCESS_KEY (and
_SESSION_TOKEN) when those are set.

Exit codes, with the pod's termination message (what the operator reads):
- 0: one line of JSON, `{"runId", "modelVersion", "modelUri", "sha256", "datasetSha256",
  "metrics"}` (under 4000 bytes; per-slice metrics are dropped first if needed);
- 2: a problem the user must fix, `<Reason>: <message>`;
- 3: an outage that may pass (MLflow, an http dataset server), `<Reason>: <message>`;
- 1: a bug, `InternalError: <message>` (the traceback is on stderr).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from edgeml.training import (
    baseline,
    champion,
    datasets,
    estimators,
    evaluation,
    export,
    profiling,
    tracking,
)
from edgeml.training.config import TrainingConfig, parse_config
from edgeml.training.errors import EXIT_SUCCEEDED, EXIT_UNEXPECTED, TrainingError, one_line

log = logging.getLogger("edgeml.train")

TERMINATION_LOG = "/dev/termination-log"
TERMINATION_LIMIT = 4000
INPUT_EXAMPLE_ROWS = 5


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise TrainingError("InvalidArguments", message)


def build_parser() -> argparse.ArgumentParser:
    """The arguments of `edgeml train`."""
    parser = _Parser(prog="edgeml train", description="Train, evaluate and register a model.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", type=Path, help="the training config, a JSON file")
    source.add_argument("--config-json", help="the training config as a JSON string")
    parser.add_argument(
        "--termination-log",
        type=Path,
        default=Path(TERMINATION_LOG),
        help="where the one-line outcome goes (the pod's terminationMessagePath)",
    )
    return parser


def summary_line(version: tracking.RegisteredVersion, limit: int = TERMINATION_LIMIT) -> str:
    """The success termination message; per-slice metrics, then gaps, are dropped to fit."""

    def rank(name: str) -> int:
        return 2 if name.startswith("slice.") else 1 if name.startswith("slice_gap_") else 0

    metrics = sorted(version.metrics.items(), key=lambda item: (rank(item[0]), item[0]))
    while True:
        line = json.dumps(
            {
                "runId": version.run_id,
                "modelVersion": version.version,
                "modelUri": version.model_uri,
                "sha256": version.sha256,
                "datasetSha256": version.dataset_sha256,
                "metrics": dict(metrics),
            },
            separators=(",", ":"),
        )
        if len(line.encode()) <= limit or not metrics:
            return line
        metrics.pop()


def write_termination_log(path: Path, line: str) -> None:
    """Write the outcome where the kubelet reads it; print it to stderr if that fails."""
    try:
        path.write_text(line)
    except OSError as exc:
        print(f"cannot write the termination log {path}: {exc}", file=sys.stderr)
        print(line, file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run `edgeml train`; the exit code and the termination log say how it went."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
        )
    termination_log = _termination_log_path(argv)
    try:
        args = build_parser().parse_args(argv)
        config = parse_config(_config_text(args))
        version = train(config, os.environ)
    except TrainingError as exc:
        log.error("training failed: %s", exc.line(), exc_info=True)
        write_termination_log(termination_log, exc.line())
        return exc.exit_code
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        write_termination_log(
            termination_log, one_line(f"InternalError: {type(exc).__name__}: {exc}")
        )
        return EXIT_UNEXPECTED
    line = summary_line(version)
    print(line)
    write_termination_log(termination_log, line)
    return EXIT_SUCCEEDED


def _termination_log_path(argv: list[str] | None) -> Path:
    """--termination-log alone, so a failure to parse the rest is still reported there."""
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--termination-log", type=Path, default=Path(TERMINATION_LOG))
    known, _ = early.parse_known_args(argv)
    path: Path = known.termination_log
    return path


def _config_text(args: argparse.Namespace) -> str:
    if args.config_json is not None:
        return str(args.config_json)
    try:
        return Path(args.config).read_text()
    except OSError as exc:
        raise TrainingError(
            "InvalidConfig", f"cannot read the config file {args.config}: {exc.strerror}"
        ) from exc


class _Clock:
    """Seconds per stage, for the log and the run's training.* metrics."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.last = self.started
        self.stages: dict[str, float] = {}

    def lap(self, stage: str) -> float:
        now = time.perf_counter()
        self.stages[stage] = now - self.last
        self.last = now
        log.info("%s done in %.3f s", stage, self.stages[stage])
        return self.stages[stage]


def train(config: TrainingConfig, env: MutableMapping[str, str]) -> tracking.RegisteredVersion:
    """Check, fit, evaluate, export, profile, log and register; or find the version an
    earlier attempt of this TrainingRun registered."""
    clock = _Clock()
    spec = config.training
    class_path = spec.estimator.class_path
    seed = spec.evaluation.random_seed

    # Refuse what the user must fix before touching MLflow or fitting anything.
    estimators.check_class_path(class_path, config.allowed_modules)
    estimator_class = estimators.load_estimator_class(class_path)
    estimator = estimators.build_estimator(estimator_class, class_path, spec.estimator.params, seed)
    task = estimators.estimator_task(estimator, class_path)
    metric_names, notes = evaluation.resolve_metrics(spec.evaluation.metrics, task)

    fetched = datasets.read_dataset(spec.dataset, env)
    dataset_sha256 = fetched.sha256
    data = datasets.prepare_dataset(fetched.frame, spec.dataset)
    target = datasets.prepare_target(data.target, task, spec.dataset.target)
    data_version, dataset_objects = fetched.data_version, fetched.objects
    del fetched  # the raw table; only the prepared matrix is needed from here
    log.info(
        "dataset %s: %d rows read, %d dropped (missing values), %d inputs, sha256 %s",
        spec.dataset.uri, data.rows_read, data.rows_dropped, len(data.inputs), dataset_sha256,
    )  # fmt: skip
    clock.lap("dataset")

    tracking.configure_environment(env)
    existing = tracking.find_version(config)
    if existing is not None:
        log.info(
            "version %d of %s was registered by an earlier attempt of this run; not training",
            existing.version, existing.name,
        )  # fmt: skip
        return existing
    clock.lap("registry lookup")

    split, split_notes = evaluation.split_rows(target, spec.evaluation.test_fraction, seed, task)
    notes += split_notes
    x_train, x_test = data.features[split.train], data.features[split.test]
    y_train, y_test = target[split.train], target[split.test]
    estimators.fit_estimator(estimator, class_path, x_train, y_train)
    fit_seconds = clock.lap("fit")

    classes = np.asarray(estimator.classes_) if task == "classification" else None
    predicted = np.asarray(estimator.predict(x_test))
    proba = (
        np.asarray(estimator.predict_proba(x_test))
        if task == "classification" and hasattr(estimator, "predict_proba")
        else None
    )
    metrics, metric_notes = evaluation.compute_metrics(
        task, metric_names, y_test, predicted, proba, classes
    )
    notes += metric_notes
    if data.slices is not None:
        slice_metrics, slice_notes = evaluation.compute_slice_metrics(
            task, metric_names, y_test, predicted, proba, classes, data.slices[split.test]
        )
        metrics.update(slice_metrics)
        notes += slice_notes
    compared_with = None
    if config.champion is not None:
        score = champion.score_champion(
            config.champion, config.registered_model, data.inputs, x_test, y_test, task,
            metric_names, classes,
        )  # fmt: skip
        notes += score.notes
        if score.metrics:
            metrics.update(score.run_metrics)
            compared_with = score.version
    clock.lap("evaluation")

    model = export.convert_to_onnx(estimator, len(data.inputs), task, data.encoding(), class_path)
    model_bytes = model.SerializeToString()
    parity = export.check_parity(
        model_bytes, estimator, x_test, task, spec.evaluation.parity_tolerance
    )
    if parity.tied_rows:
        notes.append(
            f"{parity.tied_rows} held-out row(s) have tied top probabilities; ONNX and "
            "scikit-learn may pick different labels there"
        )
    clock.lap("onnx export and parity")

    drift_baseline = baseline.build_baseline(
        x_train, data.inputs, np.asarray(estimator.predict(x_train)), task, data.encoding(),
        classes,
    )  # fmt: skip
    profile = profiling.profile_onnx(model_bytes, x_test)
    clock.lap("baseline and profile")
    for note in notes:
        log.info("note: %s", note)

    record = tracking.RunRecord(
        params=_params(config, estimator, data.inputs),
        metrics=metrics,
        training_metrics={
            "training.rows": float(data.rows_read),
            "training.rows_dropped": float(data.rows_dropped),
            "training.train_rows": float(len(split.train)),
            "training.test_rows": float(len(split.test)),
            "training.fit_seconds": fit_seconds,
            "training.parity_max_difference": parity.max_difference,
            "training.parity_tied_rows": float(parity.tied_rows),
        },
        dataset_uri=spec.dataset.uri,
        dataset_sha256=dataset_sha256,
        onnx_model=model,
        input_example=x_test[:INPUT_EXAMPLE_ROWS],
        baseline=drift_baseline,
        profile=profile,
        notes=notes,
        compared_with=compared_with,
        data_version=data_version,
        dataset_objects=dataset_objects,
    )
    version = tracking.log_and_register(config, record)
    clock.lap("mlflow log and register")
    log.info(
        "registered %s version %d (run %s, sha256 %s) in %.1f s",
        version.name, version.version, version.run_id, version.sha256,
        time.perf_counter() - clock.started,
    )  # fmt: skip
    return version


def _params(config: TrainingConfig, estimator: Any, inputs: list[str]) -> dict[str, Any]:
    spec = config.training
    params: dict[str, Any] = {
        "estimator.class": spec.estimator.class_path,
        "dataset.uri": spec.dataset.uri,
        "dataset.format": spec.dataset.format,
        "dataset.target": spec.dataset.target,
        "dataset.features": ",".join(inputs),
        "evaluation.testFraction": spec.evaluation.test_fraction,
        "evaluation.randomSeed": spec.evaluation.random_seed,
        "evaluation.parityTolerance": spec.evaluation.parity_tolerance,
        "evaluation.metrics": ",".join(spec.evaluation.metrics),
    }
    if spec.dataset.slice_column:
        params["dataset.sliceColumn"] = spec.dataset.slice_column
    effective = estimator.get_params(deep=False) if hasattr(estimator, "get_params") else {}
    for key in sorted(set(spec.estimator.params) | ({"random_state"} & set(effective))):
        params[f"estimator.{key}"] = effective.get(key, spec.estimator.params.get(key))
    return params

"""The closed loop on the local cluster: drift → one TrainingRun → a fair comparison →
a new champion → canary waves → every node on it → drift clears against its baseline.

Real pods on the process nodes (the inference servers and the training Job), the real
MLflow, the operator under its ServiceAccount. A model trained on one season's data
serves; the clients move to another season's data, which lands in the object store
(versitygw) beside the first; the policy retrains on the newest partition of that
prefix (retraining.overrides, select: Newest). Each stage's time is printed.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from mlflow import MlflowClient

from edgeml.cli import main as edgeml_main
from support.cluster import ClusterHandle
from support.drift import Clients
from support.kube import event_reasons
from support.objects import drift_policy
from support.objectstore import Bucket, create_credentials_secret
from support.operator import OperatorProcess
from support.retraining import (
    ERRORS_ONLY,
    frame_of,
    policy_runs,
    retrain_on_drift_policy,
    season_a,
    season_b,
    serve_first_champion,
)
from support.rollout import GROUP, VERSION, Rollout
from support.wait import wait_for
from support.webhooks import Receiver, receiver_secret

pytestmark = pytest.mark.timeout(900)

MODEL, NAME, POLICY = "vibration", "vibration-edge", "vibration-drift"
WINDOW_S, INTERVAL_S = 60, 5
TRAINING_TIMEOUT = 240


def _get(custom: client.CustomObjectsApi, namespace: str, plural: str, name: str) -> Any:
    return custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == kind), {})


def _runs(custom: client.CustomObjectsApi, namespace: str) -> list[dict[str, Any]]:
    return policy_runs(custom, namespace, POLICY)


def test_drift_retrains_compares_fairly_promotes_rolls_out_and_clears(
    cluster: ClusterHandle,
    operator: OperatorProcess,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    clients: Clients,
    webhook: Receiver,
    bucket: Bucket,
    tmp_path: Path,
) -> None:
    if not cluster.local:
        pytest.skip("process nodes exist only on the local cluster")
    assert cluster.settings is not None
    mlflow_uri = cluster.settings.mlflow_uri
    receiver_secret(core, namespace, "ops-webhook", webhook.url)
    served = serve_first_champion(
        custom, core, namespace, mlflow_uri, tmp_path, MODEL, NAME,
        gates=[{"metric": "f1", "min": 0.6}, {"metric": "f1", "notWorseThanChampionBy": 0.02}],
        strategy=ERRORS_ONLY,
    )  # fmt: skip
    registered, first = served.registered, served.first
    new_x, new_y = season_b()
    # The object store holds the seasons: a retrain trains on the newest partition.
    bucket.put_csv("vibration/season-a.csv", frame_of(*season_a()))
    create_credentials_secret(core, namespace, "dataset-keys")
    newest = {
        "uri": bucket.uri("vibration/"),
        "target": "label",
        "select": "Newest",
        "s3": {"endpoint": bucket.endpoint, "credentialsSecretRef": {"name": "dataset-keys"}},
    }
    ed = Rollout(custom, core, namespace, NAME)
    policy = retrain_on_drift_policy(POLICY, NAME, newest)
    policy["spec"]["notify"] = [{"name": "ops", "secretRef": {"name": "ops-webhook"}}]
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "driftpolicies", policy)
    watching = wait_for(
        lambda: _get(custom, namespace, "driftpolicies", POLICY),
        lambda o: _condition(o, "Drifted").get("reason") == "NoDrift",
        timeout=120,
        what="a first evaluation without drift",
    )
    assert _condition(watching, "Retraining")["reason"] == "Idle"
    assert _runs(custom, namespace) == []

    # 1. The clients move to season B, and season B's data lands in the object store.
    clients.data, clients.labels = new_x, new_y
    bucket.put_csv("vibration/season-b.csv", frame_of(new_x, new_y))
    start = time.monotonic()
    stages: dict[str, float] = {}

    def stage(name: str) -> None:
        stages[name] = time.monotonic() - start

    wait_for(
        lambda: _get(custom, namespace, "driftpolicies", POLICY),
        lambda o: _condition(o, "Drifted").get("status") == "True",
        timeout=WINDOW_S + 4 * INTERVAL_S + 30,
        what="Drifted=True after the clients moved to season B",
    )
    stage("drift detected")

    # 2. Exactly one TrainingRun, trigger Drift, on the new data.
    (run,) = wait_for(
        lambda: _runs(custom, namespace), lambda r: len(r) >= 1, timeout=30, what="a TrainingRun"
    )
    stage("run created")
    run_name = run["metadata"]["name"]
    trigger_id = run["metadata"]["labels"]["edgeml.io/trigger-id"]
    assert run["spec"]["trigger"] == "Drift"
    assert run["spec"]["reason"].startswith("Drift detected:")
    assert run["spec"]["requireApproval"] is False
    assert run["spec"]["overrides"]["dataset"]["uri"] == bucket.uri("vibration/")
    done = wait_for(
        lambda: _get(custom, namespace, "trainingruns", run_name),
        lambda r: (r.get("status") or {}).get("phase") in ("Succeeded", "Failed"),
        timeout=TRAINING_TIMEOUT,
        what=f"TrainingRun {run_name} to finish",
    )
    stage("trained")
    assert done["status"]["phase"] == "Succeeded", done["status"]
    new_version = done["status"]["modelVersion"]
    metrics = done["status"]["metrics"]
    # The fair comparison: the champion scored on the same held-out rows of season B.
    assert metrics["f1"] > metrics["champion.f1"] + 0.1, metrics

    # 3. It becomes champion; both numbers are in the status.
    model = wait_for(
        lambda: _get(custom, namespace, "edgemodels", MODEL),
        lambda m: ((m.get("status") or {}).get("champion") or {}).get("version") == new_version,
        timeout=60,
        what=f"version {new_version} to become champion",
    )
    stage("promoted")
    listed = next(v for v in model["status"]["versions"] if v["version"] == new_version)
    assert listed["comparedWith"] == first.version
    assert listed["championMetrics"]["f1"] == pytest.approx(metrics["champion.f1"])
    assert (listed["trigger"], listed["triggerId"]) == ("Drift", trigger_id)
    assert "same held-out rows" in model["status"]["candidate"]["message"]

    # 4. The canary waves roll it out; every node serves it.
    ed.wait_phase("Healthy", new_version, timeout=300)
    stage("rolled out")
    assert ed.served() == {f"edge-proc-{i}": str(new_version) for i in range(3)}

    # 5. Drift clears against the new version's baseline.
    cleared = wait_for(
        lambda: _get(custom, namespace, "driftpolicies", POLICY),
        lambda o: _condition(o, "Drifted").get("status") == "False",
        timeout=WINDOW_S + 6 * INTERVAL_S + 60,
        what="Drifted=False against the new baseline",
    )
    stage("drift cleared")
    record = wait_for(
        lambda: _get(custom, namespace, "driftpolicies", POLICY),
        lambda o: (o["status"].get("triggeredRuns") or [{}])[0].get("outcome") == "RolledOut",
        timeout=30,
        what="the policy to record the rollout",
    )["status"]["triggeredRuns"][0]
    print(
        "closed loop: "
        + ", ".join(f"{k} {v:.0f}s" for k, v in stages.items())
        + f" (window {WINDOW_S}s, target under {WINDOW_S + 180}s)"
    )
    assert (record["name"], record["version"], record["triggerId"]) == (
        run_name,
        new_version,
        trigger_id,
    )
    assert cleared["status"]["evaluation"]["versions"] == [str(new_version)]
    assert len(_runs(custom, namespace)) == 1
    reasons = event_reasons(core, namespace, POLICY, awaiting=("RetrainRolledOut",))
    assert reasons.count("RetrainTriggered") == 1

    # 6. The receiver heard of the drift, of the retrain starting, and of its outcome.
    def alerts() -> list[tuple[str, str, str]]:
        return [
            (b["alerts"][0]["labels"]["alertname"], b["status"],
             b["alerts"][0]["labels"].get("reason", ""))
            for b in webhook.received
        ]  # fmt: skip

    told = wait_for(
        alerts,
        lambda got: (
            ("EdgeMLRetrain", "resolved", "RolledOut") in got
            and ("EdgeMLDriftDetected", "resolved", "DataDrift") in got
        ),
        timeout=30,
        what="the retrain's and the drift's resolutions at the receiver",
    )
    retrain_alerts = [a for a in told if a[0] == "EdgeMLRetrain"]
    assert [a[1] for a in retrain_alerts] == ["firing", "resolved"]
    fired = next(
        b for b in webhook.received if b["alerts"][0]["labels"]["alertname"] == "EdgeMLRetrain"
    )
    assert fired["alerts"][0]["fingerprint"] == trigger_id
    assert fired["alerts"][0]["labels"]["trainingrun"] == run_name

    # 7. The lineage: MLflow's run and version carry the trigger id; history shows it.
    mlflow = MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    version = mlflow.get_model_version(registered, str(new_version))
    assert version.tags["edgeml.io/trigger-id"] == trigger_id
    assert version.tags["edgeml.io/compared-with"] == str(first.version)
    assert mlflow.get_run(version.run_id).data.tags["edgeml.io/trigger-id"] == trigger_id
    # ... and the data it read: the newest partition, by key, ETag and sha256.
    assert version.tags["edgeml.io/data-version"]
    manifest = mlflow.download_artifacts(
        version.run_id, "edgeml/dataset-objects.json", str(tmp_path)
    )
    (read,) = json.loads(Path(manifest).read_text())["objects"]
    assert read["key"] == "vibration/season-b.csv"
    assert read["etag"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = edgeml_main(["history", MODEL, "-n", namespace, "--kubeconfig", cluster.kubeconfig])
    assert code == 0
    table = out.getvalue()
    print(table)
    row = next(line for line in table.splitlines() if line.startswith(f"{new_version} "))
    assert run_name in row
    assert trigger_id in row
    assert "champion" in row
    assert f"{NAME}: serving" in row
    assert "same rows" in row


def test_worse_retrains_are_rejected_and_three_in_a_row_pause_retraining(
    cluster: ClusterHandle,
    operator: OperatorProcess,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    tmp_path: Path,
) -> None:
    """Every minute, a retrain with an estimator that is worse on the same rows: each
    is rejected by the fair comparison, nothing rolls out, and after three the policy
    pauses until `edgeml retrain --resume`."""
    if not cluster.local:
        pytest.skip("process nodes exist only on the local cluster")
    assert cluster.settings is not None
    mlflow_uri = cluster.settings.mlflow_uri
    served = serve_first_champion(
        custom, core, namespace, mlflow_uri, tmp_path, MODEL, NAME,
        gates=[{"metric": "f1", "notWorseThanChampionBy": 0.02}],
        strategy={"canary": {"maxUnavailable": 3, "steps": [{"nodes": "100%"}]}},
    )  # fmt: skip
    registered, first = served.registered, served.first
    ed = Rollout(custom, core, namespace, NAME)
    worse = {"class": "sklearn.naive_bayes.GaussianNB", "params": {"var_smoothing": 100.0}}
    policy = drift_policy(
        POLICY,
        NAME,
        dataDrift=None,
        schedule="* * * * *",
        action="RetrainAndDeploy",
        cooldown="10s",
        retraining={"overrides": {"estimator": worse}, "pauseAfterRejections": 3},
    )
    del policy["spec"]["dataDrift"]
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "driftpolicies", policy)

    paused = wait_for(
        lambda: _get(custom, namespace, "driftpolicies", POLICY),
        lambda o: (o["status"].get("retraining") or {}).get("state") == "Paused",
        timeout=4 * 60 + TRAINING_TIMEOUT,
        what="three rejected retrains, then RetrainingPaused",
    )
    runs = _runs(custom, namespace)
    assert len(runs) == 3
    assert {r["spec"]["trigger"] for r in runs} == {"Schedule"}
    ticks = {r["metadata"]["labels"]["edgeml.io/trigger-id"] for r in runs}
    assert len(ticks) == 3  # one run per tick
    records = paused["status"]["triggeredRuns"]
    assert [r["outcome"] for r in records] == ["Rejected"] * 3
    assert all("same held-out rows" in r["message"] for r in records), records
    condition = _condition(paused, "Retraining")
    assert condition["reason"] == "RetrainingPaused"
    assert "the last 3 retrained versions were rejected" in condition["message"]
    reasons = event_reasons(core, namespace, POLICY, awaiting=("RetrainingPaused",))
    assert reasons.count("RetrainRejected") == 3
    assert reasons.count("RetrainingPaused") == 1
    # Nothing rolled out; the registry keeps why each version stayed out.
    model = _get(custom, namespace, "edgemodels", MODEL)
    assert model["status"]["champion"]["version"] == first.version
    assert ed.get()["status"]["target"]["version"] == first.version
    mlflow = MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    for listed in model["status"]["versions"]:
        if listed["version"] == first.version:
            continue
        assert listed["promotion"] == "Rejected"
        assert listed["championMetrics"]["f1"] > listed["metrics"]["f1"] + 0.02
        tags = mlflow.get_model_version(registered, str(listed["version"])).tags
        assert tags["edgeml.io/promotion"] == "Rejected"
        assert "same held-out rows" in tags["edgeml.io/promotion-message"]

    # A tick while paused is skipped and says so; a person resumes.
    event_reasons(core, namespace, POLICY, awaiting=("ScheduledRetrainSkipped",), timeout=75)
    assert len(_runs(custom, namespace)) == 3
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = edgeml_main(
            ["retrain", MODEL, "--resume", "-n", namespace, "--kubeconfig", cluster.kubeconfig]
        )
    assert code == 0, out.getvalue()
    resumed = wait_for(
        lambda: _get(custom, namespace, "driftpolicies", POLICY),
        lambda o: o["status"]["retraining"]["state"] != "Paused",
        timeout=30,
        what="the policy to resume",
    )
    assert resumed["status"]["retraining"]["rejectionsInARow"] == 0
    event_reasons(core, namespace, POLICY, awaiting=("RetrainingResumed",))

"""The closed loop with the operator SIGKILLed at random points, at least 20 times.

On the local cluster (`hack/cluster up`): installs the CRDs; starts the operator
(`edgeml run --standalone`, admin kubeconfig) on a fresh namespace; serves season A's
model on the three process nodes (following the champion alias, canary with analysis);
creates a RetrainAndDeploy DriftPolicy that trains on next season's data; moves the
clients to that season; and, from then on, kills the operator with SIGKILL after a random
0.3-1.5 s of uptime and starts it again at once, until the loop has closed (drift
detected, trained, promoted, rolled out, drift cleared) and at least `--kills` kills have
happened. A watcher polls the objects every 0.25 s meanwhile. It then counts, for the
one trigger: TrainingRuns, training Jobs, registered versions carrying the run's uid,
the deployment's target changes, and the pods created for the new version.

    PYTHONPATH=hack:operator:tests .venv/bin/python bench/retrain_chaos.py [--kills 20]
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kubernetes import client, config
from local_cluster_measure import REPO_ROOT, run_section, say, write_section
from mlflow import MlflowClient
from rollout_scale import install_crds

from localcluster.settings import Settings
from support.drift import Clients
from support.operator import OperatorProcess, in_cluster_operator_stood_down
from support.retraining import (
    ERRORS_ONLY,
    policy_runs,
    retrain_on_drift_policy,
    season_b,
    serve_first_champion,
    write_csv,
)
from support.rollout import GROUP, VERSION

DOCS = REPO_ROOT / "docs" / "benchmarks.md"
MODEL, NAME, POLICY = "vibration", "vibration-edge", "vibration-drift"
TIMEOUT_S = 900


class Watcher:
    """Polls the deployment's target and the policy's decision; remembers every change."""

    def __init__(self, custom: client.CustomObjectsApi, namespace: str) -> None:
        self.custom, self.namespace = custom, namespace
        self.targets: list[int] = []
        self.drifted: list[bool] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _get(self, plural: str, name: str) -> dict[str, Any]:
        return dict(
            self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name)
        )

    def _run(self) -> None:
        while not self.stop.wait(0.25):
            try:
                target = ((self._get("edgedeployments", NAME).get("status") or {}).get("target")
                          or {}).get("version")  # fmt: skip
                drifted = (self._get("driftpolicies", POLICY).get("status") or {}).get("drifted")
            except client.ApiException:
                continue
            if target is not None and (not self.targets or self.targets[-1] != target):
                self.targets.append(int(target))
            if drifted is not None and (not self.drifted or self.drifted[-1] != drifted):
                self.drifted.append(bool(drifted))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


def _closed(custom: client.CustomObjectsApi, namespace: str, first: int) -> bool:
    """Drift cleared with every node of the deployment on a newer champion."""

    def get(plural: str, name: str) -> dict[str, Any]:
        return dict(custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name))

    status = get("edgedeployments", NAME).get("status") or {}
    stable = (status.get("stable") or {}).get("version")
    policy = get("driftpolicies", POLICY).get("status") or {}
    newest = (policy.get("triggeredRuns") or [{}])[0]
    healthy = stable is not None and stable != first and status.get("phase") == "Healthy"
    return healthy and policy.get("drifted") is False and newest.get("outcome") == "RolledOut"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)  # noqa: S311 (kill times, not secrets)
    # Stopped with SIGTERM (or Ctrl-C): still clean up in `finally`.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    settings = Settings()
    if subprocess.run([sys.executable, "-m", "localcluster", "up"], check=False).returncode:
        raise SystemExit("the local cluster did not come up")
    api = config.new_client_from_config(config_file=str(settings.kubeconfig))
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    batch = client.BatchV1Api(api)
    install_crds(api)
    cleanup = ExitStack()
    cleanup.enter_context(in_cluster_operator_stood_down(api))
    namespace = f"bench-loop-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace}})
    log = Path(tempfile.mkstemp(prefix="edgeml-bench-loop-", suffix=".log")[1])
    operator = OperatorProcess(
        settings.kubeconfig, namespace, log, env={"EDGEML_MLFLOW_TRACKING_URI": settings.mlflow_uri}
    )
    operator.start()
    kills = in_loop = 0
    watcher: Watcher | None = None
    clients: Clients | None = None
    try:
        # Clients first: the first rollout's analysis step measures their requests.
        clients = Clients(core, namespace, NAME, MODEL)
        with tempfile.TemporaryDirectory() as tmp:
            served = serve_first_champion(
                custom, core, namespace, settings.mlflow_uri, Path(tmp), MODEL, NAME,
                gates=[{"metric": "f1", "min": 0.6},
                       {"metric": "f1", "notWorseThanChampionBy": 0.02}],
                strategy=ERRORS_ONLY,
            )  # fmt: skip
            new_x, new_y = season_b()
            write_csv(served.data / "season-b.csv", new_x, new_y)
            policy = retrain_on_drift_policy(POLICY, NAME, "file:///data/season-b.csv")
            custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, "driftpolicies", policy
            )
            watcher = Watcher(custom, namespace)
            clients.data, clients.labels = new_x, new_y
            started = time.monotonic()
            closed_at = None
            while closed_at is None or kills < args.kills:
                if time.monotonic() - started > TIMEOUT_S:
                    raise SystemExit(f"the loop did not close within {TIMEOUT_S} s ({kills} kills)")
                time.sleep(rng.uniform(0.3, 1.5))
                operator.kill()
                kills += 1
                operator.start()
                if closed_at is None and _closed(custom, namespace, served.first.version):
                    closed_at = time.monotonic() - started
                    in_loop = kills
                    say(f"the loop closed after {closed_at:.0f} s and {kills} kills")
            # Settle, undisturbed, and look again: nothing more may happen.
            time.sleep(30)
            runs = policy_runs(custom, namespace, POLICY)
            jobs = batch.list_namespaced_job(namespace, label_selector="edgeml.io/trigger-id").items
            mlflow = MlflowClient(
                tracking_uri=settings.mlflow_uri, registry_uri=settings.mlflow_uri
            )
            versions = mlflow.search_model_versions(f"name = '{served.registered}'")
            uids = {r["metadata"]["uid"] for r in runs}
            retrained = [v for v in versions if v.tags.get("edgeml.io/training-run-uid") in uids]
            new_version = max(int(v.version) for v in versions)
            pods = core.list_namespaced_pod(
                namespace,
                label_selector=f"edgeml.io/deployment={NAME},edgeml.io/model-version={new_version}",
            ).items
    finally:
        if clients is not None:
            clients.close()
        if watcher is not None:
            watcher.close()
        operator.stop()
        core.delete_namespace(namespace)
        cleanup.close()
    assert watcher is not None
    counts = {
        "TrainingRuns for the drift trigger": len(runs),
        "training Jobs": len(jobs),
        "registered versions from those runs": len(retrained),
        "versions in the registry (the first champion and the retrain)": len(versions),
        "deployment target changes seen (first → retrained)": " → ".join(map(str, watcher.targets)),
        "Drifted changes seen": " → ".join(map(str, watcher.drifted)),
        "pods serving the retrained version (3 nodes)": len(pods),
    }
    for key, value in counts.items():
        say(f"{key}: {value}")
    ok = len(runs) == 1 and len(jobs) == 1 and len(retrained) == 1 and len(versions) == 2
    body_md = run_section(
        "The closed loop under operator kills",
        f"The loop of tests/e2e/test_retraining.py (drift → TrainingRun → fair comparison → "
        f"promotion → canary → drift cleared) with the operator SIGKILLed at random (0.3-1.5 s "
        f"of uptime each, seed {args.seed}) and restarted at once: {in_loop} kills before the "
        f"loop closed, after {closed_at:.0f} s (about 45 s undisturbed, in the e2e test's "
        f"run), {kills - in_loop} more after it.\n\n"
        "| what | count |\n|---|---|\n"
        + "".join(f"| {k} | {v} |\n" for k, v in counts.items())
        + (
            "\nOne of each per trigger: nothing created twice.\n"
            if ok
            else "\n**Something was created twice: see the counts.**\n"
        ),
    )
    print(body_md)
    if not args.no_write:
        write_section("retrain-chaos", body_md, DOCS)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

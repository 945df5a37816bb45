"""The closed loop with the operator SIGKILLed at random points, 100 times or more.

On the local cluster (`hack/cluster up`), in rounds, each in a fresh namespace:
installs the CRDs; starts the operator (`edgeml run --standalone`, admin kubeconfig);
serves season A's model on the three process nodes (following the champion alias,
canary with analysis); creates a RetrainAndDeploy DriftPolicy that trains on next
season's data; moves the clients to that season; and, from then on, kills the operator
with SIGKILL after a random 0.3-1.5 s of uptime and starts it again at once, until the
loop has closed (drift detected, trained, promoted, rolled out, drift cleared). Rounds
follow until `--kills` kills have happened in all, so every kill lands while the loop is
at work. A watcher polls the objects every 0.25 s, and the pods every 0.5 s. After each
round settles it counts, for the one trigger: TrainingRuns, training Jobs, registered
versions carrying the run's uid, the deployment's target changes, the pods serving the
new version, pods made twice for one node and version, and Events posted twice.

    PYTHONPATH=hack:operator:tests .venv/bin/python bench/retrain_chaos.py [--kills 100]
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chaos import PodLog, duplicate_events
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
SETTLE_S = 20


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


@dataclass(frozen=True)
class Round:
    """One closed loop under kills: how long, how many kills, what was counted."""

    seed: int
    kills: int
    seconds: float
    counts: dict[str, Any]

    @property
    def ok(self) -> bool:
        """One of each per trigger, nothing made twice."""
        c = self.counts
        return (
            c["TrainingRuns"] == 1 and c["training Jobs"] == 1
            and c["registered versions from the run"] == 1 and c["versions in the registry"] == 2
            and c["pods made twice"] == 0 and c["Events posted twice"] == 0
        )  # fmt: skip


def one_round(api: client.ApiClient, settings: Settings, rng: random.Random, seed: int) -> Round:
    """The loop once, in a namespace of its own, with kills until it closes."""
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    batch = client.BatchV1Api(api)
    namespace = f"bench-loop-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace}})
    log = Path(tempfile.mkstemp(prefix="edgeml-bench-loop-", suffix=".log")[1])
    operator = OperatorProcess(
        settings.kubeconfig, namespace, log, env={"EDGEML_MLFLOW_TRACKING_URI": settings.mlflow_uri}
    )
    operator.start()
    kills = 0
    watcher: Watcher | None = None
    clients: Clients | None = None
    pods: PodLog | None = None
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
            pods = PodLog(core, namespace)
            custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, "driftpolicies", policy
            )
            watcher = Watcher(custom, namespace)
            clients.data, clients.labels = new_x, new_y
            started = time.monotonic()
            while True:
                if time.monotonic() - started > TIMEOUT_S:
                    raise SystemExit(f"the loop did not close within {TIMEOUT_S} s ({kills} kills)")
                time.sleep(rng.uniform(0.3, 1.5))
                operator.kill()
                kills += 1
                operator.start()
                if _closed(custom, namespace, served.first.version):
                    break
            seconds = time.monotonic() - started
            say(f"the loop closed after {seconds:.0f} s and {kills} kills")
            # Settle, undisturbed, and look again: nothing more may happen.
            time.sleep(SETTLE_S)
            runs = policy_runs(custom, namespace, POLICY)
            jobs = batch.list_namespaced_job(namespace, label_selector="edgeml.io/trigger-id").items
            mlflow = MlflowClient(
                tracking_uri=settings.mlflow_uri, registry_uri=settings.mlflow_uri
            )
            versions = mlflow.search_model_versions(f"name = '{served.registered}'")
            uids = {r["metadata"]["uid"] for r in runs}
            retrained = [v for v in versions if v.tags.get("edgeml.io/training-run-uid") in uids]
            new_version = max(int(v.version) for v in versions)
            serving = core.list_namespaced_pod(
                namespace,
                label_selector=f"edgeml.io/deployment={NAME},edgeml.io/model-version={new_version}",
            ).items
            counts: dict[str, Any] = {
                "TrainingRuns": len(runs),
                "training Jobs": len(jobs),
                "registered versions from the run": len(retrained),
                "versions in the registry": len(versions),
                "target changes seen": " → ".join(map(str, watcher.targets)),
                "Drifted changes seen": " → ".join(map(str, watcher.drifted)),
                "pods serving the retrained version": len(serving),
                "pods made twice": pods.duplicates(),
                "Events posted twice": duplicate_events(core, namespace),
            }
    finally:
        if clients is not None:
            clients.close()
        if watcher is not None:
            watcher.close()
        if pods is not None:
            pods.duplicates()
        operator.stop()
        core.delete_namespace(namespace)
    for key, value in counts.items():
        say(f"  {key}: {value}")
    return Round(seed, kills, seconds, counts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=100, help="kills in all, over rounds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    # Stopped with SIGTERM (or Ctrl-C): still clean up in `finally`.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    settings = Settings()
    if subprocess.run([sys.executable, "-m", "localcluster", "up"], check=False).returncode:
        raise SystemExit("the local cluster did not come up")
    api = config.new_client_from_config(config_file=str(settings.kubeconfig))
    install_crds(api)
    rounds: list[Round] = []
    with in_cluster_operator_stood_down(api):
        while sum(r.kills for r in rounds) < args.kills:
            seed = args.seed + len(rounds)
            say(f"round {len(rounds) + 1} (seed {seed})")
            rng = random.Random(seed)  # noqa: S311 (kill times, not secrets)
            rounds.append(one_round(api, settings, rng, seed))
    keys = list(rounds[0].counts)
    header = "| round (seed) | kills | loop closed after | " + " | ".join(keys) + " |\n"
    header += "|---" * (3 + len(keys)) + "|\n"
    lines = "".join(
        f"| {i} ({r.seed}) | {r.kills} | {r.seconds:.0f} s | "
        + " | ".join(str(r.counts[k]) for k in keys) + " |\n"
        for i, r in enumerate(rounds, 1)
    )  # fmt: skip
    ok = all(r.ok for r in rounds)
    total = sum(r.kills for r in rounds)
    body_md = run_section(
        "The closed loop under operator kills",
        "The loop of tests/e2e/test_retraining.py (drift → TrainingRun → fair comparison → "
        "promotion → canary → drift cleared), each round in a namespace of its own, with "
        "the operator SIGKILLed at random (0.3-1.5 s of uptime each) and restarted at once "
        f"until the loop closed; then {SETTLE_S} s undisturbed before counting. {total} "
        f"kills in {len(rounds)} rounds, every one of them while the loop was at work "
        "(training, promotion, rollout). Pods are polled every 0.5 s for those made twice "
        "for one node and version; Events posted twice are those with the same object, "
        "reason and message as the one before it.\n\n"
        + header
        + lines
        + (
            "\nIn every round one of each per trigger: nothing created twice.\n"
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

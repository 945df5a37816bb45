"""Drift detection delay on the process nodes: from the inputs' shift to Drifted=True.

On the local cluster (`hack/cluster up`; its three process edge nodes, one per zone, run
real `edgeml serve` pods) it: installs the CRDs; starts the operator (`edgeml run
--standalone`, admin kubeconfig) on a fresh namespace; trains a version and serves it on
the process nodes; sends batches of rows drawn from the training data to every pod
(`support.drift.Clients`, as the e2e test); creates a DriftPolicy (PSI > 0.2 over a
one-minute window, evaluated every 5 s, two evaluations in a row to decide, hysteresis
0.2); then, `--runs` times: shifts two inputs at the site-c node and times the shift to
Drifted=True (status polled every 0.2 s), puts them back and times the return to
Drifted=False, and counts the evaluations that called the training distribution drift
(false positives) while it waits for drift to clear. Results go to stdout and
docs/benchmarks.md.

    PYTHONPATH=hack:operator:tests .venv/bin/python bench/drift_delay.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kubernetes import client, config
from local_cluster_measure import REPO_ROOT, run_section, say, write_section
from rollout_scale import install_crds

from localcluster.settings import Settings
from support.drift import Clients, serve_on_process_nodes
from support.objects import drift_policy
from support.operator import OperatorProcess
from support.rollout import GROUP, VERSION
from support.wait import wait_for

DOCS = REPO_ROOT / "docs" / "benchmarks.md"
MODEL, NAME, POLICY = "vibration", "vibration-edge", "vibration-drift"
SHIFTED_NODE = "edge-proc-2"
WINDOW, INTERVAL, CONSECUTIVE = "1m", "5s", 2


def _policy(custom: client.CustomObjectsApi, namespace: str) -> dict[str, Any]:
    return dict(
        custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "driftpolicies", POLICY)
    )


def _time_until(
    custom: client.CustomObjectsApi, namespace: str, drifted: bool, timeout: float
) -> float:
    started = time.monotonic()
    wait_for(
        lambda: (_policy(custom, namespace).get("status") or {}).get("drifted"),
        lambda seen: seen is drifted,
        timeout=timeout,
        interval=0.2,
        what=f"status.drifted {drifted}",
    )
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    settings = Settings()
    up = subprocess.run([sys.executable, "-m", "localcluster", "up"], check=False)
    if up.returncode != 0:
        raise SystemExit("the local cluster did not come up")
    api = config.new_client_from_config(config_file=str(settings.kubeconfig))
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    install_crds(api)
    namespace = f"bench-drift-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace}})
    log = Path(tempfile.mkstemp(prefix="edgeml-bench-drift-", suffix=".log")[1])
    operator = OperatorProcess(
        settings.kubeconfig, namespace, log, env={"EDGEML_MLFLOW_TRACKING_URI": settings.mlflow_uri}
    )
    operator.start()
    detected: list[float] = []
    cleared: list[float] = []
    false_positives = 0
    looks = 0
    clients: Clients | None = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            serve_on_process_nodes(
                custom, core, namespace, settings.mlflow_uri, Path(tmp), NAME, MODEL
            )
        clients = Clients(core, namespace, NAME, MODEL)
        policy = drift_policy(
            POLICY,
            NAME,
            dataDrift={"method": "psi", "threshold": 0.2, "window": WINDOW, "minSamples": 300},
            evaluation={"interval": INTERVAL, "consecutive": CONSECUTIVE, "hysteresis": 0.2},
        )
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "driftpolicies", policy)
        _time_until(custom, namespace, False, 120)
        for run in range(args.runs):
            clients.shifted = {SHIFTED_NODE}
            detected.append(_time_until(custom, namespace, True, 180))
            clients.shifted = set()
            cleared.append(_time_until(custom, namespace, False, 300))
            # The training distribution again, for a window: no evaluation may call it drift.
            seen: set[str] = set()
            until = time.monotonic() + 60
            while time.monotonic() < until:
                status = _policy(custom, namespace).get("status") or {}
                stamp = str(status.get("lastEvaluated"))
                if stamp not in seen:
                    seen.add(stamp)
                    looks += 1
                    false_positives += status.get("drifted") is True or any(
                        z.get("drifted") for z in status.get("zones") or []
                    )
                time.sleep(0.5)
            say(f"run {run + 1}: detected in {detected[-1]:.1f} s, cleared in {cleared[-1]:.1f} s")
    finally:
        if clients is not None:
            clients.close()
        operator.stop()
        core.delete_namespace(namespace)

    body_md = run_section(
        "Drift detection delay on the process nodes",
        "Three process edge nodes (one per zone), real `edgeml serve` pods, clients sending "
        "about 200 rows/s per pod drawn from the training data; the policy scores PSI > 0.2 "
        f"over a {WINDOW} window every {INTERVAL}, {CONSECUTIVE} evaluations in a row to "
        "decide, hysteresis 0.2. At the site-c node two inputs shift by 3 standard "
        "deviations, then go back.\n\n"
        "| | runs | median | max |\n|---|---:|---:|---:|\n"
        f"| shift → Drifted=True | {len(detected)} | {statistics.median(detected):.1f} s "
        f"| {max(detected):.1f} s |\n"
        f"| back → Drifted=False | {len(cleared)} | {statistics.median(cleared):.1f} s "
        f"| {max(cleared):.1f} s |\n\n"
        f"False positives: {false_positives} of {looks} evaluations of the training "
        "distribution (the fleet or any zone drifted). Detection takes the decision rule's "
        "two evaluations once the window holds enough shifted rows; clearing waits for the "
        "shifted rows to leave the window (one-minute slots), then two clear evaluations "
        f"(load average {os.getloadavg()[0]:.1f} at the end).\n",
    )
    print(body_md)
    if not args.no_write:
        write_section("drift-delay", body_md, DOCS)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Rollback time on the process nodes: from the first failing analysis window to all stable.

On the local cluster (`hack/cluster up`; its three process edge nodes run real
`edgeml serve` pods) it: installs the CRDs; starts the operator (`edgeml run
--standalone`, admin kubeconfig) on a fresh namespace; trains a good version and rolls it
out with the e2e test's strategy (one node, an 8 s analysis of error rate and prediction
shift every 4 s with failureLimit 0, then every node); sends single-row inference
traffic to every ready pod; then, `--runs` times, pins a bad version and times the
rollback, alternating a version whose predictions shift (trained on skewed labels) and
one whose graph fails every inference. Timing is `support.rollout.time_rollback`, as in
the e2e test: from the `at` of the first counted failing measurement in status to every
node serving the stable version again, ready. Results go to stdout and docs/benchmarks.md.

    PYTHONPATH=hack:operator:tests .venv/bin/python bench/rollback.py [--runs 6]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kubernetes import client, config
from local_cluster_measure import REPO_ROOT, run_section, say, write_section
from rollout_scale import install_crds

from localcluster.settings import Settings
from support.models import Trained, register_again, register_failing, train_version
from support.objects import DELETE, edge_deployment, hermetic_edge_model
from support.operator import OperatorProcess
from support.rollout import ANALYSED, GROUP, PROCESS_EDGE, VERSION, Rollout, time_rollback, traffic
from support.wait import wait_for

DOCS = REPO_ROOT / "docs" / "benchmarks.md"
MODEL, NAME = "vibration", "vibration-edge"
STRATEGY = ANALYSED  # as the e2e test


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    settings = Settings()
    up = subprocess.run([sys.executable, "-m", "localcluster", "up"], check=False)
    if up.returncode != 0:
        raise SystemExit("the local cluster did not come up")
    api = config.new_client_from_config(config_file=str(settings.kubeconfig))
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    install_crds(api)
    namespace = f"bench-rollback-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace}})
    log = Path(tempfile.mkstemp(prefix="edgeml-bench-rollback-", suffix=".log")[1])
    operator = OperatorProcess(
        settings.kubeconfig, namespace, log, env={"EDGEML_MLFLOW_TRACKING_URI": settings.mlflow_uri}
    )
    operator.start()
    results: list[tuple[int, str, float, str]] = []
    try:
        model = hermetic_edge_model(MODEL)
        registered = model["spec"]["registry"]["registeredModel"]
        mlflow = settings.mlflow_uri
        with tempfile.TemporaryDirectory() as tmp:
            good = train_version(registered, mlflow, Path(tmp))
            skewed = train_version(registered, mlflow, Path(tmp), skewed=True)
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "edgemodels", model)
        ed = Rollout(custom, core, namespace, NAME)
        ed.wait_model_knows(MODEL, skewed.version)
        body = edge_deployment(
            NAME,
            MODEL,
            modelRef={"alias": DELETE, "version": good.version},
            nodeSelector=PROCESS_EDGE,
            strategy=STRATEGY,
        )
        # The clients run from the start: the first rollout's analysis needs requests too.
        with traffic(core, namespace, NAME, MODEL) as load:
            custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, "edgedeployments", body
            )
            say(f"rolling out the good version {good.version} to the process nodes")
            ed.wait_phase("Healthy", good.version)
            for run in range(1, args.runs + 1):
                kind = "prediction shift" if run % 2 else "errors"
                bad: Trained = (
                    register_again(registered, mlflow, skewed)
                    if run % 2
                    else register_failing(registered, mlflow, good)
                )
                say(f"run {run}: version {bad.version} ({kind})")
                ed.roll_to(MODEL, bad.version)
                took = time_rollback(ed, bad.version, good.version)
                say(f"  rolled back in {took.seconds:.1f}s from the {took.since}")
                results.append((run, kind, took.seconds, took.reason.split(":")[0]))
                # Back to the stable pin, so the next bad version starts from Healthy.
                ed.pin(good.version)
                wait_for(
                    ed.status,
                    lambda s: s.get("phase") == "Healthy",
                    timeout=120,
                    what=f"{NAME} Healthy on version {good.version} again",
                )
            sent = load.sent
    finally:
        # Delete our objects while the operator runs, so it releases their finalizers.
        for plural in ("edgedeployments", "edgemodels"):
            custom.delete_collection_namespaced_custom_object(GROUP, VERSION, namespace, plural)
        wait_for(
            lambda: custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, "edgedeployments"
            )["items"],
            lambda left: not left,
            timeout=60,
            what="the EdgeDeployment to be deleted",
        )
        operator.stop()
        core.delete_namespace(namespace)
    seconds = [r[2] for r in results]
    rows = "\n".join(f"| {r} | {k} | {s:.1f} s | {why} |" for r, k, s, why in results)
    body_md = run_section(
        "Rollback time on the process nodes",
        "| run | bad version | first failing window → all 3 nodes on stable | reason |\n"
        "|---:|---|---:|---|\n"
        f"{rows}\n\n"
        f"Median {statistics.median(seconds):.1f} s, max {max(seconds):.1f} s over "
        f"{len(seconds)} runs (target < 30 s); {sent} inference requests sent meanwhile.\n",
    )
    print(body_md)
    if not args.no_write:
        write_section("rollback", body_md, DOCS)
    return 0


if __name__ == "__main__":
    sys.exit(main())

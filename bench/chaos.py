"""Chaos, measured: the control plane, MLflow and an edge node failing in the middle of
the operator's work, one fault at a time, on the local cluster.

On the local cluster (`hack/cluster up`; its three process edge nodes run real
`edgeml serve` pods, its training node runs real training Jobs) it installs the CRDs
and, for each scenario, starts the operator (`edgeml run --standalone`, admin
kubeconfig) on a fresh namespace, brings the work to the point named, injects the
fault for `--outage` seconds, undoes it, and waits for the work to finish:

- **apiserver-mid-rollout**, **etcd-mid-rollout**: an EdgeDeployment pinned to version 1
  on the three process nodes is pinned to version 2 (one node, a 20 s pause, then the
  rest); in the pause, the kube-apiserver (or etcd) is stopped, then started again with
  `python -m localcluster up`;
- **node-cut-mid-wave**: the same rollout; in the pause, a node still on version 1 is
  taken offline (`hack/cluster node offline`: heartbeats stop, its network is cut) for
  `--node-outage` seconds, long enough to go NotReady, and brought back;
- **mlflow-mid-training**: a TrainingRun whose Job trains on the training node; once the
  Job's pod runs, MLflow is stopped, and started again;
- **mlflow-mid-promotion**: an Auto-promoting EdgeModel with a champion, five rounds: a
  new version is registered, the EdgeModel poked (its reconcile reads the versions and
  moves the alias at once), and MLflow stopped 0-400 ms later (random), before, inside
  or after that reconcile.

For each: whether it converged (the rollout Healthy on version 2 on every node, the run
Succeeded with its version champion, the new version champion in MLflow and in status)
and in how long after the fault was undone; the duplicates: inference pods created
twice for one node and version (pods are polled every 0.5 s, so a pod that lived less
than that is not seen), training Jobs and registered versions beyond one per run, and
Events posted twice (one object's Event repeating the one before it); and whether the
operator process survived the fault. Results go to stdout and the `chaos` section of
docs/benchmarks.md.

    PYTHONPATH=hack:operator:tests .venv/bin/python bench/chaos.py [--only NAME] [--outage 20]
        [--node-outage 45]
"""

from __future__ import annotations

import argparse
import itertools
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kubernetes import client, config
from local_cluster_measure import REPO_ROOT, run_section, say, write_section
from mlflow import MlflowClient
from rollout_scale import install_crds

from localcluster import cluster
from localcluster.settings import Settings
from support.models import Trained, register_again, train_version
from support.objects import DELETE, edge_deployment, hermetic_edge_model, training_run
from support.operator import OperatorProcess, in_cluster_operator_stood_down
from support.retraining import season_a, write_csv
from support.rollout import GROUP, PROCESS_EDGE, VERSION, Rollout
from support.wait import WaitTimeoutError, wait_for

DOCS = REPO_ROOT / "docs" / "benchmarks.md"
MODEL, NAME = "vibration", "vibration-edge"
RUN_LABEL = "edgeml.io/training-run"
RUN_UID_TAG = "edgeml.io/training-run-uid"
CONVERGE_TIMEOUT_S = 420
PAUSED = {
    "canary": {
        "maxUnavailable": 1,
        "progressDeadline": "10m",
        "steps": [{"nodes": 1}, {"pause": {"duration": "20s"}}, {"nodes": "100%"}],
    }
}
"""One node, a 20 s pause (where the fault lands), then every node."""
SCENARIOS = (
    "apiserver-mid-rollout",
    "etcd-mid-rollout",
    "node-cut-mid-wave",
    "mlflow-mid-training",
    "mlflow-mid-promotion",
)


@dataclass
class Outcome:
    """What one scenario showed."""

    scenario: str
    fault: str
    converged: bool = False
    after_restore_s: float | None = None
    after_fault_s: float | None = None
    duplicates: dict[str, int] = field(default_factory=dict)
    operator_survived: bool = True
    note: str = ""


def duplicate_events(core: client.CoreV1Api, namespace: str) -> int:
    """Events posted twice: one object's Event with the same reason and message as the
    one before it (each of the operator's transitions is posted once, after its status
    write succeeded; a condition that flips back and forth posts each flip, which is
    not a duplicate). Ordered by resourceVersion, the API server's write order."""
    by_object: dict[tuple[str, str], list[Any]] = {}
    for e in core.list_namespaced_event(namespace).items:
        if (e.source and e.source.component) == "edgeml-operator":
            key = (e.involved_object.kind, e.involved_object.name)
            by_object.setdefault(key, []).append(e)
    twice = 0
    for events in by_object.values():
        events.sort(key=lambda e: int(e.metadata.resource_version))
        twice += sum(
            1
            for before, after in itertools.pairwise(events)
            if (before.reason, before.message) == (after.reason, after.message)
        )
    return twice


class PodLog:
    """Every inference pod seen, by (node, version) → uids, polled every 0.5 s (errors,
    as while the API server is down, skip a poll)."""

    def __init__(self, core: client.CoreV1Api, namespace: str) -> None:
        self.core, self.namespace = core, namespace
        self.uids: dict[tuple[str, str], set[str]] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.5):
            try:
                pods = self.core.list_namespaced_pod(
                    self.namespace, label_selector="edgeml.io/deployment", _request_timeout=3
                ).items
            except Exception:  # noqa: S112  (the API server may be down: that is the test)
                continue
            for p in pods:
                key = (
                    (p.metadata.annotations or {}).get("edgeml.io/node", ""),
                    (p.metadata.labels or {}).get("edgeml.io/model-version", ""),
                )
                self.uids.setdefault(key, set()).add(p.metadata.uid)

    def duplicates(self) -> int:
        """Pods beyond the first for one node and version."""
        self.stop.set()
        self.thread.join(5)
        return sum(len(u) - 1 for u in self.uids.values())


class Bench:
    """The cluster's clients and what every scenario shares."""

    def __init__(self, settings: Settings, outage: float, node_outage: float) -> None:
        self.settings, self.outage, self.node_outage = settings, outage, node_outage
        self.api = config.new_client_from_config(config_file=str(settings.kubeconfig))
        self.core = client.CoreV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.batch = client.BatchV1Api(self.api)
        self.mlflow = settings.mlflow_uri

    def repair(self) -> float:
        """`python -m localcluster up`: starts what is stopped; its wall time."""
        started = time.monotonic()
        up = subprocess.run(
            [sys.executable, "-m", "localcluster", "up"], check=False, capture_output=True
        )
        if up.returncode:
            raise SystemExit(f"the local cluster did not come back:\n{up.stderr.decode()}")
        return time.monotonic() - started

    def stop_component(self, name: str) -> None:
        """Stop one component of the cluster (SIGTERM, as a crash-restart looks to clients)."""
        if not cluster.supervisor(self.settings).stop(name, grace=5.0):
            raise SystemExit(f"{name} was not running")

    @contextmanager
    def namespace(self, scenario: str) -> Iterator[tuple[str, OperatorProcess]]:
        """A fresh namespace with an operator watching it; deleted (objects first, while
        the operator runs, so it releases their finalizers) at the end."""
        namespace = f"bench-chaos-{scenario.split('-')[0]}-{uuid.uuid4().hex[:6]}"
        self.core.create_namespace({"metadata": {"name": namespace}})
        log = Path(tempfile.mkstemp(prefix=f"edgeml-bench-chaos-{scenario}-", suffix=".log")[1])
        operator = OperatorProcess(
            self.settings.kubeconfig,
            namespace,
            log,
            env={"EDGEML_MLFLOW_TRACKING_URI": self.mlflow},
        )
        operator.start()
        try:
            yield namespace, operator
        finally:
            if operator.proc is not None and operator.proc.poll() is not None:
                operator.start()  # it died in the fault: it must release the finalizers
            for plural in ("driftpolicies", "edgedeployments", "trainingruns", "edgemodels"):
                self.custom.delete_collection_namespaced_custom_object(
                    GROUP, VERSION, namespace, plural
                )
            for plural in ("edgedeployments", "trainingruns", "edgemodels"):
                wait_for(
                    lambda p=plural: self.custom.list_namespaced_custom_object(
                        GROUP, VERSION, namespace, p
                    )["items"],
                    lambda left: not left,
                    timeout=90,
                    what=f"the {plural} of {namespace} to be deleted",
                )
            operator.stop()
            self.core.delete_namespace(namespace)
            say(f"  operator log: {log}")

    def wait_converged(self, check: Callable[[], bool], what: str) -> float | None:
        """Seconds until `check()` holds (errors count as not yet), None on timeout."""
        started = time.monotonic()
        try:
            wait_for(check, bool, timeout=CONVERGE_TIMEOUT_S, interval=0.5, what=what)
        except WaitTimeoutError:
            return None
        return time.monotonic() - started


# --- the scenarios ------------------------------------------------------------------------


def _rollout(bench: Bench, scenario: str, fault: str) -> Outcome:
    outcome = Outcome(scenario, fault)
    with bench.namespace(scenario) as (namespace, operator), tempfile.TemporaryDirectory() as tmp:
        model = hermetic_edge_model(MODEL, promotion={"mode": "Manual"})
        registered = model["spec"]["registry"]["registeredModel"]
        first = train_version(registered, bench.mlflow, Path(tmp))
        second = register_again(registered, bench.mlflow, first)
        bench.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "edgemodels", model)
        ed = Rollout(bench.custom, bench.core, namespace, NAME)
        ed.wait_model_knows(MODEL, second.version)
        body = edge_deployment(
            NAME, MODEL, modelRef={"alias": DELETE, "version": first.version},
            nodeSelector=PROCESS_EDGE, strategy=PAUSED,
        )  # fmt: skip
        bench.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "edgedeployments", body
        )
        ed.wait_phase("Healthy", first.version)
        say(f"{scenario}: version {first.version} Healthy on every node; pinning {second.version}")
        pods = PodLog(bench.core, namespace)
        ed.pin(second.version)
        wait_for(
            ed.status,
            lambda s: ((s.get("canary") or {}).get("version") == second.version
                       and (s.get("canary") or {}).get("step", 0) >= 1),
            timeout=120, what="the canary in its pause",
        )  # fmt: skip
        say(f"{scenario}: the canary is in its pause: {fault}")
        faulted = time.monotonic()
        if scenario == "node-cut-mid-wave":
            served = wait_for(
                ed.served, lambda s: str(first.version) in s.values(), timeout=30,
                what=f"a node still serving version {first.version}",
            )  # fmt: skip
            behind = sorted(n for n, v in served.items() if v == str(first.version))[0]
            outcome.fault = f"{fault} ({behind})"
            cluster.set_node_offline(bench.settings, behind, True)
            try:
                time.sleep(bench.node_outage)
            finally:
                cluster.set_node_offline(bench.settings, behind, False)
        else:
            bench.stop_component(scenario.split("-")[0].replace("apiserver", "kube-apiserver"))
            time.sleep(bench.outage)
            took = bench.repair()
            outcome.note = f"restarted in {took:.1f} s"
        restored = time.monotonic()
        _check_operator(outcome, operator)

        def healthy() -> bool:
            status = ed.status()
            on = set(ed.served().values())
            return (
                status.get("phase") == "Healthy"
                and (status.get("stable") or {}).get("version") == second.version
                and on == {str(second.version)}
                and len(ed.served()) == 3
            )

        took_s = bench.wait_converged(healthy, f"{NAME} Healthy on version {second.version}")
        _finish(outcome, took_s, restored, faulted)
        outcome.duplicates = {
            "pods": pods.duplicates(),
            "events": duplicate_events(bench.core, namespace),
        }
    return outcome


def _check_operator(outcome: Outcome, operator: OperatorProcess) -> None:
    """Note whether the operator lived through the fault; start it again if not (what
    its Deployment would do), so convergence is still measured."""
    if operator.proc is not None and operator.proc.poll() is None:
        return
    outcome.operator_survived = False
    outcome.note += f"; the operator exited ({operator.proc and operator.proc.returncode})"
    operator.start()


def _finish(outcome: Outcome, took_s: float | None, restored: float, faulted: float) -> None:
    outcome.converged = took_s is not None
    if took_s is not None:
        outcome.after_restore_s = took_s
        outcome.after_fault_s = took_s + (restored - faulted)


def _training_model(data: Path) -> dict[str, Any]:
    write_csv(data / "season-a.csv", *season_a())
    return hermetic_edge_model(
        MODEL,
        training={
            "dataset": {"uri": "file:///data/season-a.csv", "target": "label"},
            "estimator": {"class": "sklearn.linear_model.LogisticRegression", "params": {}},
            "volumes": [{"name": "data", "hostPath": {"path": str(data), "type": "Directory"}}],
            "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
        },
        promotion={"mode": "Auto", "gates": [{"metric": "f1", "min": 0.6}]},
    )


def _champion(bench: Bench, namespace: str) -> int | None:
    model = bench.custom.get_namespaced_custom_object(
        GROUP, VERSION, namespace, "edgemodels", MODEL
    )
    return ((model.get("status") or {}).get("champion") or {}).get("version")


def _mlflow_champion(bench: Bench, registered: str) -> int:
    theirs = MlflowClient(tracking_uri=bench.mlflow, registry_uri=bench.mlflow)
    return int(theirs.get_model_version_by_alias(registered, "champion").version)


def _mid_training(bench: Bench, scenario: str, fault: str) -> Outcome:
    outcome = Outcome(scenario, fault)
    with bench.namespace(scenario) as (namespace, operator), tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        model = _training_model(data)
        registered = model["spec"]["registry"]["registeredModel"]
        bench.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "edgemodels", model)
        run = training_run("train-1", MODEL)
        bench.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "trainingruns", run)
        wait_for(
            lambda: bench.core.list_namespaced_pod(
                namespace, label_selector=f"{RUN_LABEL}=train-1"
            ).items,
            lambda pods: any(p.status.phase == "Running" for p in pods),
            timeout=180, what="the training Job's pod to run",
        )  # fmt: skip
        say(f"{scenario}: the training pod runs: {fault}")
        faulted = time.monotonic()
        bench.stop_component("mlflow")
        time.sleep(bench.outage)
        outcome.note = f"restarted in {bench.repair():.1f} s"
        restored = time.monotonic()
        _check_operator(outcome, operator)

        def get_run() -> dict[str, Any]:
            return dict(
                bench.custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, "trainingruns", "train-1"
                )
            )

        def done() -> bool:
            status = get_run().get("status") or {}
            return status.get("phase") == "Succeeded" and _champion(bench, namespace) == (
                status.get("modelVersion")
            )

        took_s = bench.wait_converged(done, "the run Succeeded, its version champion")
        _finish(outcome, took_s, restored, faulted)
        status = get_run().get("status") or {}
        if not outcome.converged:
            why = str(status.get("failureReason", ""))[:160]
            outcome.note += f"; the run {status.get('phase')}: {why}"
        uid = get_run()["metadata"]["uid"]
        jobs = bench.batch.list_namespaced_job(namespace, label_selector=RUN_LABEL).items
        theirs = MlflowClient(tracking_uri=bench.mlflow, registry_uri=bench.mlflow)
        versions = theirs.search_model_versions(f"name = '{registered}'")
        ours = [v for v in versions if v.tags.get(RUN_UID_TAG) == uid]
        outcome.duplicates = {
            "jobs": max(0, len(jobs) - 1),
            "versions": max(0, len(ours) - 1),
            "events": duplicate_events(bench.core, namespace),
        }
        retried = sum(int(j.status.failed or 0) for j in jobs)
        outcome.note += f"; failed pods of the Job, retried: {retried}"
    return outcome


PROMOTION_ROUNDS = 5


def _mid_promotion(bench: Bench, scenario: str, fault: str) -> Outcome:
    """Each round: a new version registered, the EdgeModel poked (an annotation: its
    reconcile reads the versions and moves the alias at once), and MLflow stopped after a
    random 0-400 ms, so the stop lands before, inside or after that reconcile."""
    outcome = Outcome(scenario, f"{fault}, {PROMOTION_ROUNDS} rounds")
    rng = random.Random(7)  # noqa: S311 (fault times, not secrets)
    with bench.namespace(scenario) as (namespace, operator), tempfile.TemporaryDirectory() as tmp:
        model = hermetic_edge_model(
            MODEL, promotion={"mode": "Auto", "gates": [{"metric": "f1", "min": 0.6}]}
        )
        registered = model["spec"]["registry"]["registeredModel"]
        first: Trained = train_version(registered, bench.mlflow, Path(tmp))
        bench.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "edgemodels", model)
        wait_for(lambda: _champion(bench, namespace), lambda c: c == first.version, timeout=60,
                 what=f"version {first.version} champion")  # fmt: skip
        worst: tuple[float, float] | None = (0.0, 0.0)
        delays = []
        for i in range(PROMOTION_ROUNDS):
            newer = register_again(registered, bench.mlflow, first)
            bench.custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, "edgemodels", MODEL,
                {"metadata": {"annotations": {"bench.edgeml.io/poke": str(i)}}},
            )  # fmt: skip
            delay = rng.uniform(0.0, 0.4)
            delays.append(f"{delay * 1000:.0f}")
            time.sleep(delay)
            faulted = time.monotonic()
            bench.stop_component("mlflow")
            say(f"{scenario}: round {i + 1}, version {newer.version}, MLflow stopped after "
                f"{delay * 1000:.0f} ms")  # fmt: skip
            time.sleep(bench.outage)
            bench.repair()
            restored = time.monotonic()
            _check_operator(outcome, operator)

            def promoted(version: int = newer.version) -> bool:
                return (
                    _champion(bench, namespace) == version
                    and _mlflow_champion(bench, registered) == version
                )

            took_s = bench.wait_converged(promoted, f"version {newer.version} champion")
            if took_s is None:
                worst = None
                break
            if worst is not None and took_s >= worst[0]:
                worst = (took_s, took_s + restored - faulted)
        outcome.converged = worst is not None
        if worst is not None:
            outcome.after_restore_s, outcome.after_fault_s = worst
        outcome.note = f"stops at {', '.join(delays)} ms after the poke; the slowest round shown"
        outcome.duplicates = {"events": duplicate_events(bench.core, namespace)}
    return outcome


RUNS: dict[str, tuple[str, Callable[[Bench, str, str], Outcome]]] = {
    "apiserver-mid-rollout": ("kube-apiserver stopped, started again", _rollout),
    "etcd-mid-rollout": ("etcd stopped, started again", _rollout),
    "node-cut-mid-wave": ("an edge node offline, back online", _rollout),
    "mlflow-mid-training": ("MLflow stopped, started again", _mid_training),
    "mlflow-mid-promotion": ("MLflow stopped, started again", _mid_promotion),
}


def _row(o: Outcome) -> str:
    def secs(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f} s"

    dupes = ", ".join(f"{k} {v}" for k, v in o.duplicates.items()) or "-"
    return (
        f"| {o.scenario} | {o.fault} | {'yes' if o.converged else '**no**'} | "
        f"{secs(o.after_restore_s)} | {secs(o.after_fault_s)} | {dupes} | "
        f"{'yes' if o.operator_survived else '**no**'} | {o.note.strip('; ')} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", choices=SCENARIOS, default=None)
    parser.add_argument("--outage", type=float, default=20.0, help="seconds each fault lasts")
    parser.add_argument(
        "--node-outage", type=float, default=45.0,
        help="seconds the node is cut off (NotReady comes after the cluster's 20 s grace)",
    )  # fmt: skip
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    # Stopped with SIGTERM (or Ctrl-C): still clean up in `finally` (the namespace, the
    # cluster's stopped component, the in-cluster operator scaled back).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    settings = Settings()
    if subprocess.run([sys.executable, "-m", "localcluster", "up"], check=False).returncode:
        raise SystemExit("the local cluster did not come up")
    bench = Bench(settings, args.outage, args.node_outage)
    install_crds(bench.api)
    outcomes: list[Outcome] = []
    with in_cluster_operator_stood_down(bench.api):
        for scenario in args.only or SCENARIOS:
            fault, run = RUNS[scenario]
            try:
                outcome = run(bench, scenario, fault)
            except Exception as err:  # recorded: one scenario's failure is a finding too
                outcome = Outcome(scenario, fault, note=f"the bench failed: {err!r}"[:300])
            finally:
                bench.repair()  # whatever happened, the next one starts from a whole cluster
            say(_row(outcome))
            outcomes.append(outcome)
    body_md = run_section(
        "Chaos: the control plane, MLflow and an edge node failing mid-work",
        f"Each fault lasts {args.outage:.0f} s, the node cut {args.node_outage:.0f} s (the "
        "node goes NotReady after the local cluster's 20 s grace); converge times are "
        "from the fault undone and "
        "from the fault injected. Duplicates: inference pods made twice for one node and "
        "version, training Jobs and registered versions beyond one per run, Events posted "
        "twice (one object's Event with the reason and message of the one before it).\n\n"
        "| scenario | fault | converged | after restore | after fault | duplicates | "
        "operator survived | notes |\n|---|---|---|---:|---:|---|---|---|\n"
        + "\n".join(_row(o) for o in outcomes)
        + "\n",
    )
    print(body_md)
    if not args.no_write:
        write_section("chaos", body_md, DOCS)
    ok = all(o.converged and not any(o.duplicates.values()) for o in outcomes)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

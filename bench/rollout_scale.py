"""A rollout across 1,000 KWOK edge nodes: time to complete every wave, operator memory.

On a throwaway cluster (see bench/README.md) with `--kwok-nodes` edge nodes it:
installs the CRDs; registers two versions of a small model in the cluster's MLflow;
starts the operator (`edgeml run --standalone`, admin kubeconfig); creates an EdgeModel
and an EdgeDeployment pinned to version 1 on every KWOK edge node (waves 10%, 50%,
100%, no analysis steps, maxUnavailable 10%), and times it to Healthy; then pins
version 2 and times that rollout too (every pod replaced). The operator's peak
resident memory (VmHWM) is read at the end. Results go to stdout and to a section of
docs/benchmarks.md.

    PYTHONPATH=hack:operator:tests .venv/bin/python bench/rollout_scale.py [--kwok-nodes 1000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kubernetes import client, config
from local_cluster_measure import (
    REPO_ROOT,
    cli,
    run_section,
    say,
    throwaway_cluster,
    write_section,
)

from edgeml.api.crds import KINDS, build_crd, peering_crds
from support.models import register_again, train_version
from support.objects import DELETE, edge_deployment, hermetic_edge_model
from support.operator import OperatorProcess

GROUP, VERSION = "edgeml.io", "v1alpha1"
NAMESPACE = "bench"
NAME = "fleet"
DOCS = REPO_ROOT / "docs" / "benchmarks.md"


def wait(what: str, probe: Any, timeout: float, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(every)


def install_crds(api: client.ApiClient) -> None:
    ext = client.ApiextensionsV1Api(api)
    for crd in [build_crd(info) for info in KINDS] + peering_crds():
        ext.patch_custom_resource_definition(
            crd["metadata"]["name"],
            crd,
            field_manager="bench",
            force=True,
            _content_type="application/apply-patch+yaml",
        )
    for crd in [build_crd(info) for info in KINDS]:
        name = crd["metadata"]["name"]
        wait(
            f"CRD {name}",
            lambda n=name: any(
                c.type == "Established" and c.status == "True"
                for c in ext.read_custom_resource_definition(n).status.conditions or []
            ),
            30,
        )


def peak_rss_mb(pid: int) -> tuple[float, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def timed_rollout(custom: client.CustomObjectsApi, version: int, nodes: int) -> float:
    started = time.monotonic()

    def healthy() -> bool:
        obj = custom.get_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, "edgedeployments", NAME
        )
        status = obj.get("status") or {}
        stable = status.get("stable") or {}
        if int(time.monotonic() - started) % 10 == 0:
            say(f"  phase {status.get('phase')}: {status.get('message', '')[:100]}")
        return (
            status.get("phase") == "Healthy"
            and stable.get("version") == version
            and stable.get("ready") == nodes
        )

    wait(f"version {version} Healthy on {nodes} nodes", healthy, 600, every=1.0)
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kwok-nodes", type=int, default=1000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    with throwaway_cluster() as (env, settings):
        up = cli(["up", "--kwok-nodes", str(args.kwok_nodes)], env)
        if up.code != 0:
            raise SystemExit("the throwaway cluster did not come up")
        api = config.new_client_from_config(config_file=str(settings.kubeconfig))
        core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        selector = "edgeml.io/simulator=kwok,node-role.kubernetes.io/edge=true"
        nodes = wait(
            f"{args.kwok_nodes} Ready KWOK edge nodes",
            lambda: (
                (
                    n := sum(
                        1
                        for node in core.list_node(label_selector=selector).items
                        if any(
                            c.type == "Ready" and c.status == "True"
                            for c in node.status.conditions or []
                        )
                    )
                )
                >= args.kwok_nodes
                and n
            ),
            300,
            every=2.0,
        )
        install_crds(api)
        core.create_namespace({"metadata": {"name": NAMESPACE}})
        model = hermetic_edge_model("fleet-model")
        registered = model["spec"]["registry"]["registeredModel"]
        with tempfile.TemporaryDirectory() as tmp:
            first = train_version(registered, settings.mlflow_uri, Path(tmp))
        second = register_again(registered, settings.mlflow_uri, first)
        log = Path(tempfile.mkstemp(prefix="edgeml-bench-operator-", suffix=".log")[1])
        operator = OperatorProcess(
            settings.kubeconfig,
            NAMESPACE,
            log,
            env={"EDGEML_MLFLOW_TRACKING_URI": settings.mlflow_uri},
        )
        operator.start()
        try:
            custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "edgemodels", model)
            wait(
                "the EdgeModel to list both versions",
                lambda: (
                    len(
                        (
                            custom.get_namespaced_custom_object(
                                GROUP, VERSION, NAMESPACE, "edgemodels", "fleet-model"
                            ).get("status")
                            or {}
                        ).get("versions")
                        or []
                    )
                    >= 2
                ),
                120,
            )
            body = edge_deployment(
                NAME,
                "fleet-model",
                modelRef={"alias": DELETE, "version": first.version},
                nodeSelector={
                    "edgeml.io/simulator": "kwok",
                    "node-role.kubernetes.io/edge": "true",
                },
                strategy={
                    "canary": {
                        "maxUnavailable": "10%",
                        "steps": [{"nodes": "10%"}, {"nodes": "50%"}, {"nodes": "100%"}],
                        "analysis": DELETE,
                    }
                },
            )
            say(f"rollout of version {first.version} to {nodes} nodes (no pods yet)")
            custom.create_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, "edgedeployments", body
            )
            first_took = timed_rollout(custom, first.version, nodes)
            say(f"  done in {first_took:.1f}s")
            say(f"rollout of version {second.version}: every pod replaced")
            custom.patch_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, "edgedeployments", NAME,
                {"spec": {"modelRef": {"version": second.version}}},
            )  # fmt: skip
            second_took = timed_rollout(custom, second.version, nodes)
            say(f"  done in {second_took:.1f}s")
            assert operator.proc is not None
            rss, peak = peak_rss_mb(operator.proc.pid)
        finally:
            operator.stop()
    table = (
        "| rollout | nodes | waves | time to Healthy | target |\n"
        "|---|---:|---|---:|---:|\n"
        f"| first (no pods before) | {nodes} | 10%, 50%, 100% | {first_took:.1f} s | < 120 s |\n"
        f"| update (every pod replaced, maxUnavailable 10%) | {nodes} | 10%, 50%, 100% "
        f"| {second_took:.1f} s | < 120 s |\n\n"
        f"Operator memory after both: {rss:.0f} MB resident, peak {peak:.0f} MB "
        "(VmHWM; target < 250 MB).\n"
    )
    body_md = run_section(f"Rollout across {nodes} KWOK edge nodes", table)
    print(body_md)
    if not args.no_write:
        write_section("rollout-scale", body_md, DOCS)
    return 0


if __name__ == "__main__":
    sys.exit(main())

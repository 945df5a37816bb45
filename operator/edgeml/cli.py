"""The `edgeml` command line: one entry point for the operator and its programs."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path
from typing import Any

from edgeml import __version__
from edgeml.allocator import DEFAULT_TRIM_SECONDS


def _kube_options() -> argparse.ArgumentParser:
    """The options of every command that talks to a cluster, as kubectl spells them."""
    kube = argparse.ArgumentParser(add_help=False)
    kube.add_argument("-n", "--namespace", default=None,
                      help="the object's namespace (default: the kube context's)")  # fmt: skip
    kube.add_argument(
        "--kubeconfig", default=None, help="the kubeconfig file (default: $KUBECONFIG)"
    )
    kube.add_argument("--context", default=None, help="the kubeconfig context to use")
    return kube


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `edgeml` and its sub-commands."""
    kube = _kube_options()
    parser = argparse.ArgumentParser(prog="edgeml", description=__doc__)
    parser.add_argument("--version", action="version", version=f"edgeml {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    crds = sub.add_parser("crds", help="write the CRDs generated from the API models")
    crds.add_argument("--output-dir", type=Path, default=Path("crds"))
    crds.add_argument(
        "--check", action="store_true", help="exit 1 if the files differ from the models"
    )
    crds.add_argument(
        "--kopf-peering",
        action="store_true",
        help="kopf's shared peering CRDs instead of edgeml's (only for peering mode)",
    )
    docs = sub.add_parser("api-docs", help="write docs/api.md from the API models")
    docs.add_argument("--output", type=Path, default=Path("docs/api.md"))
    docs.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    train = sub.add_parser(
        "train", help="train, convert to ONNX and register (what training Jobs run)"
    )
    train.add_argument("--config-json", help="the training configuration (see edgeml.training)")
    train.add_argument("--config", help="a file holding the training configuration")
    train.add_argument("--termination-log", help="where the outcome line goes")
    sub.add_parser(
        "serve", help="serve a model over the Open Inference Protocol (edge pods run it)"
    )
    promote = sub.add_parser(
        "promote", parents=[kube], help="approve a version of an EdgeModel as champion"
    )
    promote.add_argument("model", help="the EdgeModel's name")
    promote.add_argument(
        "--version", type=int, required=True, help="the registry version to promote"
    )
    promote.add_argument("--by", default=None, help="who approves (default: $USER)")
    rollout = sub.add_parser(
        "rollout",
        parents=[kube],
        help="an EdgeDeployment's rollout: status, or steer it (promote, abort, pause, resume)",
    )
    rollout.add_argument("action", choices=["status", "promote", "abort", "pause", "resume"])
    rollout.add_argument("deployment", help="the EdgeDeployment's name")
    rollout.add_argument(
        "-w", "--watch", action="store_true",
        help="status: follow the rollout until it ends (exit 1 if it is rolled back)",
    )  # fmt: skip
    rollout.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="status --watch: give up after this many seconds",
    )
    drift = sub.add_parser(
        "drift", parents=[kube], help="show a DriftPolicy's latest evaluation as a table"
    )
    drift.add_argument("policy", help="the DriftPolicy's name")
    retrain = sub.add_parser(
        "retrain",
        parents=[kube],
        help="retrain an EdgeModel now (one TrainingRun), or resume its paused DriftPolicies",
    )
    retrain.add_argument("model", help="the EdgeModel's name")
    retrain.add_argument("--reason", default=None, help="why, recorded with the version")
    retrain.add_argument(
        "--resume",
        action="store_true",
        help="resume the DriftPolicies of this model that paused retraining (trains nothing)",
    )
    history = sub.add_parser(
        "history", parents=[kube], help="an EdgeModel's lineage: versions, triggers, rollouts"
    )
    history.add_argument("model", help="the EdgeModel's name")
    run = sub.add_parser("run", help="run the operator")
    run.add_argument(
        "--namespace", action="append", default=[], help="watch only this namespace (repeatable)"
    )
    run.add_argument(
        "--standalone", action="store_true", help="skip peering (local use, one instance)"
    )
    run.add_argument(
        "--peering",
        default="edgeml",
        help="the peering object's name (ClusterKopfPeering, or KopfPeering per namespace)",
    )
    run.add_argument(
        "--leader-elect",
        action="store_true",
        help="elect the active replica with a Lease (use with --standalone: no kopf peering)",
    )
    run.add_argument("--lease-name", default="edgeml", help="the Lease's name")
    run.add_argument(
        "--lease-namespace",
        default=None,
        help="the Lease's namespace (default: $POD_NAMESPACE, else the pod's own namespace)",
    )
    run.add_argument(
        "--identity", default=None, help="this replica's name in the Lease (default: $POD_NAME)"
    )
    run.add_argument("--liveness", default="http://0.0.0.0:8080/healthz")
    run.add_argument("--metrics-address", default="0.0.0.0")
    run.add_argument("--metrics-port", type=int, default=9090)
    run.add_argument("--log-format", choices=["json", "text"], default="json")
    run.add_argument("--verbose", action="store_true")
    run.add_argument(
        "--malloc-trim-seconds",
        type=float,
        default=float(os.environ.get("EDGEML_MALLOC_TRIM_SECONDS", DEFAULT_TRIM_SECONDS)),
        help="give freed memory back to the system this often (glibc malloc_trim; 0: never; "
        "default $EDGEML_MALLOC_TRIM_SECONDS, else %(default)s)",
    )
    return parser


POD_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def _lease_of(args: argparse.Namespace) -> tuple[str, str, str] | None:
    if not args.leader_elect:
        return None
    namespace = args.lease_namespace or os.environ.get("POD_NAMESPACE")
    if not namespace and Path(POD_NAMESPACE_FILE).exists():
        namespace = Path(POD_NAMESPACE_FILE).read_text().strip()
    if not namespace:
        raise SystemExit("edgeml run --leader-elect: name the Lease's namespace with "
                         "--lease-namespace (or set POD_NAMESPACE)")  # fmt: skip
    identity = args.identity or os.environ.get("POD_NAME") or socket.gethostname()
    # A replacement pod may reuse a name; the suffix keeps two processes apart.
    return namespace, args.lease_name, f"{identity}_{os.getpid()}"


def _run(args: argparse.Namespace) -> int:
    from edgeml.runtime import RuntimeOptions, run

    lease = _lease_of(args)
    return run(
        RuntimeOptions(
            namespaces=tuple(args.namespace),
            standalone=args.standalone,
            peering=args.peering,
            liveness=args.liveness,
            metrics_address=args.metrics_address,
            metrics_port=args.metrics_port,
            log_format=args.log_format,
            verbose=args.verbose,
            lease=lease,
            malloc_trim_seconds=args.malloc_trim_seconds,
        )
    )


def _api_docs(args: argparse.Namespace) -> int:
    from edgeml.api.docs import render_api_docs, write_api_docs

    if args.check:
        if not args.output.exists() or args.output.read_text() != render_api_docs():
            print(f"{args.output} is out of date: run `edgeml api-docs`", file=sys.stderr)
            return 1
        return 0
    write_api_docs(args.output)
    print(f"wrote {args.output}")
    return 0


def _rollout(args: argparse.Namespace) -> int:
    import uuid

    from edgeml.kube.annotations import annotate
    from edgeml.plans.edgedeployment import COMMAND_PREFIX

    if args.action == "status":
        return _rollout_status(args)
    _exists("edgedeployments", "EdgeDeployment", args.namespace, args.deployment)
    # A fresh value each time: the operator acts on a value it has not acted on before.
    token = uuid.uuid4().hex[:12]
    annotate(
        "edgedeployments", args.namespace, args.deployment, {COMMAND_PREFIX + args.action: token}
    )
    print(f"asked the operator to {args.action} the rollout of {args.namespace}/{args.deployment}")
    return 0


def _rollout_status(args: argparse.Namespace) -> int:
    import time

    from edgeml.rollout.report import render_rollout, rollout_outcome

    deadline = time.monotonic() + args.timeout
    shown = ""
    while True:
        deployment = _exists("edgedeployments", "EdgeDeployment", args.namespace, args.deployment)
        text = render_rollout(deployment)
        if text != shown:
            print(text if not shown else f"---\n{text}", end="", flush=True)
            shown = text
        outcome = rollout_outcome(deployment)
        if not args.watch or outcome is not None:
            return 1 if outcome == "failed" else 0
        if time.monotonic() > deadline:
            print(f"error: the rollout did not end within {args.timeout:.0f} s", file=sys.stderr)
            return 2
        time.sleep(1)


def _exists(plural: str, kind: str, namespace: str, name: str) -> dict[str, Any]:
    """The object, or a one-line error (exit 1) if it does not exist."""
    from edgeml.kube.reads import get_custom

    found = get_custom(plural, namespace, name)
    if found is None:
        raise CommandError(f"{kind} {namespace}/{name} does not exist")
    return found


class CommandError(Exception):
    """What a person did wrong, said in one line (exit 1)."""


def _drift(args: argparse.Namespace) -> int:
    from edgeml.drift.report import render_drift

    policy = _exists("driftpolicies", "DriftPolicy", args.namespace, args.policy)
    print(render_drift(policy), end="")
    return 0


def _retrain(args: argparse.Namespace) -> int:
    import uuid

    from edgeml.kube.annotations import annotate
    from edgeml.kube.reads import list_custom
    from edgeml.plans.edgemodel import RETRAIN_ANNOTATION, RETRAIN_REASON_ANNOTATION
    from edgeml.plans.retraining import RESUME_ANNOTATION

    _exists("edgemodels", "EdgeModel", args.namespace, args.model)
    # A fresh value each time: the operator acts once on each value it has not seen.
    token = uuid.uuid4().hex[:12]
    if args.resume:
        deployments = {
            d["metadata"]["name"]
            for d in list_custom("edgedeployments", args.namespace, "")
            if ((d.get("spec") or {}).get("modelRef") or {}).get("name") == args.model
        }
        policies = [
            p["metadata"]["name"]
            for p in list_custom("driftpolicies", args.namespace, "")
            if ((p.get("spec") or {}).get("deploymentRef") or {}).get("name") in deployments
        ]
        if not policies:
            raise CommandError(
                f"no DriftPolicy in {args.namespace} watches a deployment of EdgeModel {args.model}"
            )
        for name in policies:
            annotate("driftpolicies", args.namespace, name, {RESUME_ANNOTATION: token})
        print(
            f"resumed retraining of DriftPolicy {', '.join(sorted(policies))} in {args.namespace}"
        )
        return 0
    annotations = {RETRAIN_ANNOTATION: token}
    if args.reason:
        annotations[RETRAIN_REASON_ANNOTATION] = args.reason
    annotate("edgemodels", args.namespace, args.model, annotations)
    print(
        f"asked the operator to retrain {args.namespace}/{args.model} (request {token}); "
        f"follow it with `edgeml history {args.model} -n {args.namespace}`"
    )
    return 0


def _history(args: argparse.Namespace) -> int:
    from edgeml.kube.reads import list_custom
    from edgeml.plans.history import render_history

    model = _exists("edgemodels", "EdgeModel", args.namespace, args.model)
    deployments = list_custom("edgedeployments", args.namespace, "")
    names = {
        d["metadata"]["name"]
        for d in deployments
        if ((d.get("spec") or {}).get("modelRef") or {}).get("name") == args.model
    }
    policies = [
        p
        for p in list_custom("driftpolicies", args.namespace, "")
        if ((p.get("spec") or {}).get("deploymentRef") or {}).get("name") in names
    ]
    runs = list_custom("trainingruns", args.namespace, "")
    print(render_history(model, runs, deployments, policies), end="")
    return 0


def _promote(args: argparse.Namespace) -> int:
    import getpass
    import uuid

    from edgeml.kube.annotations import annotate
    from edgeml.plans.promotion import (
        APPROVAL_ID_ANNOTATION,
        APPROVE_ANNOTATION,
        APPROVED_BY_ANNOTATION,
    )

    who = args.by or getpass.getuser()
    _exists("edgemodels", "EdgeModel", args.namespace, args.model)
    annotate(
        "edgemodels",
        args.namespace,
        args.model,
        {
            APPROVE_ANNOTATION: str(args.version),
            APPROVED_BY_ANNOTATION: who,
            APPROVAL_ID_ANNOTATION: uuid.uuid4().hex,
        },
    )
    print(
        f"approved version {args.version} of {args.namespace}/{args.model} as {who}; "
        "the operator moves the champion alias"
    )
    return 0


def _crds(args: argparse.Namespace) -> int:
    from edgeml.api.crds import peering_crd_files, stale_crds, write_crds

    files = peering_crd_files() if args.kopf_peering else None
    if args.check:
        stale = stale_crds(args.output_dir, files)
        for name in stale:
            print(f"{args.output_dir / name} is out of date: run `edgeml crds`", file=sys.stderr)
        return 1 if stale else 0
    for path in write_crds(args.output_dir, files):
        print(f"wrote {path}")
    return 0


def _kube_command(args: argparse.Namespace) -> int:
    """Run a command that talks to the cluster; a person's mistake or an unreachable
    cluster is one line on stderr and exit 1, never a traceback."""
    from edgeml.kube.client import CLUSTER_ERRORS, current_namespace, explain, use_kubeconfig

    use_kubeconfig(args.kubeconfig, args.context)
    try:
        if args.namespace is None:
            args.namespace = current_namespace()
        run = {
            "promote": _promote,
            "rollout": _rollout,
            "drift": _drift,
            "retrain": _retrain,
            "history": _history,
        }[args.command]
        return run(args)
    except CommandError as err:
        print(f"error: {err}", file=sys.stderr)
    except CLUSTER_ERRORS as err:
        print(f"error: {explain(err)}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    """Run `edgeml` with `argv` (default: the process arguments); return the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["train"]:
        # The training program owns its flags; it runs in Jobs, with the ML extras installed.
        from edgeml.training.program import main as train_main

        return int(train_main(argv[1:]))
    if argv[:1] == ["serve"]:
        # So does the inference server the edge pods run.
        from edgeml.serving.program import main as serve_main

        return int(serve_main(argv[1:]))
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "crds":
        return _crds(args)
    if args.command == "run":
        return _run(args)
    if args.command == "api-docs":
        return _api_docs(args)
    if args.command in ("promote", "rollout", "drift", "retrain", "history"):
        return _kube_command(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())

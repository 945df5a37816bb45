"""The operator, running under its own ServiceAccount, reconciles all four kinds."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from edgeml.registry.client import RegisteredModel, read_model
from support.cluster import ClusterHandle
from support.models import train_version
from support.objects import PLURALS, drift_policy, edge_deployment, training_run
from support.objects import hermetic_edge_model as edge_model
from support.operator import OperatorProcess, metric_value
from support.wait import wait_for

GROUP, VERSION = "edgeml.io", "v1alpha1"
STARTED = {"JobCreated", "Training", "DatasetNotFound"}


def _create(custom: client.CustomObjectsApi, ns: str, body: dict[str, Any]) -> None:
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURALS[body["kind"]], body)


def _get(custom: client.CustomObjectsApi, ns: str, kind: str, name: str) -> dict[str, Any]:
    return dict(custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURALS[kind], name))


def _condition(obj: dict[str, Any], cond_type: str) -> dict[str, Any]:
    for cond in (obj.get("status") or {}).get("conditions", []):
        if cond["type"] == cond_type:
            return dict(cond)
    return {}


def _wait_condition(
    custom: client.CustomObjectsApi,
    ns: str,
    kind: str,
    name: str,
    cond_type: str,
    reason: str | set[str],
) -> dict[str, Any]:
    reasons = {reason} if isinstance(reason, str) else reason
    return wait_for(
        lambda: _get(custom, ns, kind, name),
        lambda obj: (
            _condition(obj, cond_type).get("reason") in reasons
            and obj["status"].get("observedGeneration") == obj["metadata"]["generation"]
        ),
        timeout=30,
        what=f"{kind} {name}: {cond_type} reason in {sorted(reasons)}, current generation",
    )


def _events(core: client.CoreV1Api, ns: str, name: str) -> list[Any]:
    return [e for e in core.list_namespaced_event(ns).items if e.involved_object.name == name]


def test_references_wait_for_their_target_and_resolve_when_it_appears(
    operator: OperatorProcess,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
) -> None:
    _create(custom, namespace, edge_deployment())
    _create(custom, namespace, training_run())
    _create(custom, namespace, drift_policy())
    dep = _wait_condition(
        custom, namespace, "EdgeDeployment", "vibration-edge", "Ready", "ModelNotFound"
    )
    assert "EdgeModel vibration does not exist" in _condition(dep, "Ready")["message"]
    assert dep["status"]["phase"] == "Pending"
    _wait_condition(custom, namespace, "TrainingRun", "vibration-1", "Ready", "ModelNotFound")
    # The deployment exists but serves nothing yet: nothing to evaluate, and it says so.
    policy = _wait_condition(
        custom, namespace, "DriftPolicy", "vibration-drift", "Ready", "NoServingPods"
    )
    assert _condition(policy, "Ready")["status"] == "False"
    assert _condition(policy, "Drifted")["reason"] == "TooFewSamples"

    _create(custom, namespace, edge_model())
    model = _wait_condition(custom, namespace, "EdgeModel", "vibration", "Ready", "NoChampion")
    assert model["status"]["registeredModel"].startswith("vibration-")
    dep = _wait_condition(
        custom, namespace, "EdgeDeployment", "vibration-edge", "Ready", "NoTargetVersion"
    )
    assert _condition(dep, "Degraded")["status"] == "False"
    # With its model there, the run gets its Job (which fails here: there is no dataset).
    run = _wait_condition(custom, namespace, "TrainingRun", "vibration-1", "Ready", STARTED)
    assert run["status"]["job"] == "vibration-1-train"
    # Each transition was announced once, as an Event on the object.
    reasons = wait_for(
        lambda: [e.reason for e in _events(core, namespace, "vibration-edge")],
        lambda got: "NoTargetVersion" in got,
        timeout=10,
        what="the NoTargetVersion event",
    )
    assert reasons.count("ModelNotFound") == 1, reasons
    assert reasons.count("NoTargetVersion") == 1, reasons


UPDATES = [
    ("EdgeModel", edge_model, "Ready", "NoChampion", {"versionHistoryLimit": 5}),
    ("EdgeDeployment", edge_deployment, "Ready", "ModelNotFound", {"serving": {"threads": 2}}),
    ("DriftPolicy", drift_policy, "Ready", "DeploymentNotFound", {"action": "Retrain"}),
]


@pytest.mark.parametrize(
    ("kind", "build", "cond_type", "reason", "change"), UPDATES, ids=[u[0] for u in UPDATES]
)
def test_spec_update_is_observed_with_its_generation(
    operator: OperatorProcess,
    custom: client.CustomObjectsApi,
    namespace: str,
    kind: str,
    build: Any,
    cond_type: str,
    reason: str,
    change: dict[str, Any],
) -> None:
    body = build()
    name = body["metadata"]["name"]
    _create(custom, namespace, body)
    first = _wait_condition(custom, namespace, kind, name, cond_type, reason)
    assert first["status"]["observedGeneration"] == 1
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURALS[kind], name, {"spec": change}
    )
    second = _wait_condition(custom, namespace, kind, name, cond_type, reason)
    assert second["metadata"]["generation"] == 2
    assert _condition(second, cond_type)["observedGeneration"] == 2
    # The status did not flip, so its transition time did not move.
    assert (
        _condition(second, cond_type)["lastTransitionTime"]
        == _condition(first, cond_type)["lastTransitionTime"]
    )


def test_trainingrun_metadata_update_keeps_its_status(
    operator: OperatorProcess, custom: client.CustomObjectsApi, namespace: str
) -> None:
    _create(custom, namespace, training_run())
    _wait_condition(custom, namespace, "TrainingRun", "vibration-1", "Ready", "ModelNotFound")
    custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "trainingruns",
        "vibration-1",
        {"metadata": {"labels": {"team": "vib"}}},
    )
    run = _wait_condition(custom, namespace, "TrainingRun", "vibration-1", "Ready", "ModelNotFound")
    assert run["metadata"]["generation"] == 1  # labels are not spec: no new generation
    assert run["metadata"]["labels"]["team"] == "vib"


def test_spec_errors_the_schema_cannot_catch_become_invalid_spec_and_recover(
    operator: OperatorProcess,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
) -> None:
    shrinking = {"strategy": {"canary": {"steps": [{"nodes": "50%"}, {"nodes": "20%"}]}}}
    _create(custom, namespace, edge_deployment(**shrinking))
    _create(custom, namespace, drift_policy(schedule="61 * * * *"))
    _create(
        custom,
        namespace,
        edge_model(promotion={"gates": [{"metric": "roc_auc", "min": 0.9}]}),
    )
    dep = _wait_condition(
        custom, namespace, "EdgeDeployment", "vibration-edge", "Ready", "InvalidSpec"
    )
    assert "spec.strategy.canary.steps[1] moves 20% nodes" in _condition(dep, "Ready")["message"]
    assert dep["status"]["phase"] == "Invalid"
    policy = _wait_condition(
        custom, namespace, "DriftPolicy", "vibration-drift", "Ready", "InvalidSpec"
    )
    assert "spec.schedule: cron '61 * * * *': bad minute" in _condition(policy, "Ready")["message"]
    model = _wait_condition(custom, namespace, "EdgeModel", "vibration", "Ready", "InvalidSpec")
    assert (
        "checks roc_auc, which spec.training.evaluation.metrics does not compute"
        in (_condition(model, "Ready")["message"])
    )
    warnings = wait_for(
        lambda: [
            e.reason for e in _events(core, namespace, "vibration-edge") if e.type == "Warning"
        ],
        lambda got: len(got) > 0,
        timeout=10,
        what="a Warning event about the invalid spec",
    )
    assert warnings == ["InvalidSpec"]
    # Fixing the spec clears the error by itself.
    custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "driftpolicies",
        "vibration-drift",
        {"spec": {"schedule": "0 3 * * 0"}},
    )
    _wait_condition(custom, namespace, "DriftPolicy", "vibration-drift", "Ready", "NoServingPods")


def test_delete_releases_each_kind_and_metrics_follow(
    operator: OperatorProcess, custom: client.CustomObjectsApi, namespace: str
) -> None:
    bodies = [edge_model(), training_run(), edge_deployment(), drift_policy()]
    for body in bodies:
        _create(custom, namespace, body)
    _wait_condition(custom, namespace, "DriftPolicy", "vibration-drift", "Ready", "NoServingPods")
    _wait_condition(
        custom, namespace, "EdgeDeployment", "vibration-edge", "Ready", "NoTargetVersion"
    )
    # Metrics follow the status write by a moment: wait for them rather than race.
    wait_for(
        operator.metrics,
        lambda text: (
            metric_value(text, "edgeml_objects", kind="EdgeModel", phase="Pending") == 1
            and metric_value(text, "edgeml_reconcile_total", kind="DriftPolicy", result="ok") >= 1
        ),
        timeout=10,
        what="edgeml_objects and edgeml_reconcile_total to count the objects",
    )
    for body in bodies:
        name = body["metadata"]["name"]
        custom.delete_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURALS[body["kind"]], name
        )
    wait_for(
        lambda: [
            item["metadata"]["name"]
            for plural in PLURALS.values()
            for item in custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)[
                "items"
            ]
        ],
        lambda left: left == [],
        timeout=30,
        what="every object to be deleted",
    )
    wait_for(
        operator.metrics,
        lambda text: metric_value(text, "edgeml_objects", kind="EdgeModel", phase="Pending") == 0,
        timeout=10,
        what="edgeml_objects to drop the deleted model",
    )


def test_operator_killed_mid_reconcile_converges_without_duplicates(
    operator: OperatorProcess,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
) -> None:
    names = [f"edge-{i}" for i in range(15)]
    for name in names:
        _create(custom, namespace, edge_deployment(name=name))
    # Kill it while it works through the burst; some objects are done, some half, some not.
    wait_for(
        operator.metrics,
        lambda text: (
            metric_value(text, "edgeml_reconcile_total", kind="EdgeDeployment", result="ok") >= 3
        ),
        timeout=20,
        what="the operator to be part-way through the burst",
    )
    operator.kill()
    _create(custom, namespace, edge_model())
    operator.start()
    for name in names:
        obj = _wait_condition(custom, namespace, "EdgeDeployment", name, "Ready", "NoTargetVersion")
        types = [c["type"] for c in obj["status"]["conditions"]]
        assert sorted(types) == ["Degraded", "Progressing", "Ready"], types
        finalizers = obj["metadata"].get("finalizers", [])
        assert finalizers.count("edgeml.io/finalizer") <= 1, finalizers
    for name in names:
        reasons = wait_for(
            lambda n=name: [e.reason for e in _events(core, namespace, n)],
            lambda got: "NoTargetVersion" in got,
            timeout=10,
            what=f"the NoTargetVersion event of {name}",
        )
        assert reasons.count("NoTargetVersion") == 1, (name, reasons)
        assert reasons.count("ModelNotFound") <= 1, (name, reasons)


def test_kubectl_get_edgeml_lists_every_kind_with_useful_columns(
    cluster: ClusterHandle,
    operator: OperatorProcess,
    custom: client.CustomObjectsApi,
    namespace: str,
) -> None:
    for body in (edge_model(), training_run(), edge_deployment(), drift_policy()):
        _create(custom, namespace, body)
    _wait_condition(
        custom, namespace, "EdgeDeployment", "vibration-edge", "Ready", "NoTargetVersion"
    )
    kubectl = _kubectl(cluster)
    out = subprocess.run(
        [kubectl, "--kubeconfig", cluster.kubeconfig, "get", "edgeml", "-A"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for header in (
        "CHAMPION",
        "LATEST",
        "MODE",
        "TRIGGER",
        "TARGET",
        "STABLE-NODES",
        "CANARY-NODES",
    ):
        assert header in out, out
    assert "NAMESPACE" in out
    ours = [line for line in out.splitlines() if line.startswith(namespace)]
    assert any("edgemodel.edgeml.io/vibration" in line for line in ours), out
    assert any("trainingrun.edgeml.io/vibration-1" in line for line in ours), out
    row = next(line for line in ours if "edgedeployment.edgeml.io/" in line)
    assert "Pending" in row.split()


def _kubectl(cluster: ClusterHandle) -> str:
    if cluster.settings is not None:
        from localcluster.build import binary

        return str(binary(cluster.settings, "kubectl"))
    found = shutil.which("kubectl")
    assert found, "kubectl is needed on PATH when testing a cluster named by KUBECONFIG"
    return found


def test_samples_apply_cleanly_and_are_reconciled(
    cluster: ClusterHandle,
    operator: OperatorProcess,
    custom: client.CustomObjectsApi,
    namespace: str,
    tmp_path: Path,
) -> None:
    import uuid

    samples = Path(__file__).resolve().parents[2] / "manifests" / "samples"
    # The samples as a user applies them, with one change: a registered model of the
    # test's own, since the MLflow server outlives tests (a demo run leaves `vibration`
    # with a champion there, and the sample deployment would start rolling it out).
    (tmp_path / "kustomization.yaml").write_text(
        f"""apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [{os.path.relpath(samples, tmp_path)}]
patches:
  - target: {{kind: EdgeModel, name: vibration}}
    patch: |-
      - op: add
        path: /spec/registry
        value: {{registeredModel: vibration-{uuid.uuid4().hex[:8]}}}
"""
    )
    applied = subprocess.run(
        [
            _kubectl(cluster),
            "--kubeconfig",
            cluster.kubeconfig,
            "apply",
            "-n",
            namespace,
            "-k",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.count(" created") == 4, applied.stdout
    _wait_condition(custom, namespace, "EdgeModel", "vibration", "Ready", "NoChampion")
    _wait_condition(custom, namespace, "TrainingRun", "vibration-1", "Ready", STARTED)
    _wait_condition(
        custom, namespace, "EdgeDeployment", "vibration-edge", "Ready", "NoTargetVersion"
    )
    _wait_condition(custom, namespace, "DriftPolicy", "vibration-drift", "Ready", "NoServingPods")


def _grant_in_namespace(
    api_client: client.ApiClient, namespace: str, rules: list[dict[str, Any]]
) -> None:
    """The chart's rules for this test's namespace only (the shared identity keeps the
    default chart's rights, which have no peering: leader election is the default)."""
    rbac = client.RbacAuthorizationV1Api(api_client)
    rbac.create_namespaced_role(namespace, {"metadata": {"name": "peering"}, "rules": rules})
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": "peering"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "peering"},
        "subjects": [{"kind": "ServiceAccount", "name": "edgeml", "namespace": "edgeml-system"}],
    })  # fmt: skip


def test_an_operator_watching_namespaces_peers_through_their_kopf_peering(
    cluster: ClusterHandle,
    operator_kubeconfig: Path,
    api_client: client.ApiClient,
    custom: client.CustomObjectsApi,
    namespace: str,
    tmp_path: Path,
) -> None:
    """What the chart installs with watchNamespaces: a KopfPeering in the namespace, and
    the operator peering there (not standalone) under its own identity."""
    import yaml

    helm = shutil.which("helm") or ""
    if cluster.settings is not None:
        from localcluster.build import binary

        helm = str(binary(cluster.settings, "helm"))
    chart = Path(__file__).resolve().parents[2] / "charts" / "edgeml"
    rendered = subprocess.run(
        [helm, "template", "plant", str(chart), "--kube-version", "1.35.4",
         "--set", f"watchNamespaces={{{namespace}}}",
         "--set", "operator.leaderElection.enabled=false", "--api-versions", "kopf.dev/v1"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    (peering,) = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "KopfPeering"]
    assert peering["metadata"]["namespace"] == namespace
    # The namespaced rules (the other ClusterRole holds the cluster-scoped reads).
    (role,) = [
        d
        for d in yaml.safe_load_all(rendered)
        if d and d["kind"] == "ClusterRole" and d["metadata"]["name"] == "plant-edgeml"
    ]
    kopf_rules = [r for r in role["rules"] if "kopf.dev" in r["apiGroups"]]
    assert kopf_rules, "the chart grants peering rights when it renders peering"
    _grant_in_namespace(api_client, namespace, kopf_rules)
    custom.create_namespaced_custom_object("kopf.dev", "v1", namespace, "kopfpeerings", peering)
    proc = OperatorProcess(
        operator_kubeconfig,
        namespace,
        tmp_path / "operator.log",
        args=(f"--peering={peering['metadata']['name']}",),
    )
    proc.start()
    try:
        _create(custom, namespace, edge_model())
        model = _wait_condition(custom, namespace, "EdgeModel", "vibration", "Ready", "NoChampion")
        assert model["status"]["phase"] == "Pending"
        seen = wait_for(
            lambda: custom.get_namespaced_custom_object(
                "kopf.dev", "v1", namespace, "kopfpeerings", peering["metadata"]["name"]
            ),
            lambda obj: bool(obj.get("status")),
            timeout=30,
            what="the operator to keep its record in the namespace's KopfPeering",
        )
        assert len(seen["status"]) == 1
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "edgemodels", "vibration")
        wait_for(
            lambda: custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "edgemodels")[
                "items"
            ],
            lambda items: items == [],
            timeout=30,
            what="the EdgeModel to be deleted (its finalizer released)",
        )
    finally:
        proc.stop()


def test_a_child_the_api_server_refuses_is_reported_and_the_object_recovers_once_allowed(
    operator: OperatorProcess,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
) -> None:
    """A namespace quota that allows no Job: the TrainingRun says which child was refused
    and why (Ready=False ApplyFailed, one Warning Event), and carries on when it may."""
    quota = {"metadata": {"name": "no-jobs"}, "spec": {"hard": {"count/jobs.batch": "0"}}}
    core.create_namespaced_resource_quota(namespace, quota)
    _create(custom, namespace, edge_model())
    _create(custom, namespace, training_run())
    run = wait_for(
        lambda: _get(custom, namespace, "TrainingRun", "vibration-1"),
        lambda obj: _condition(obj, "Ready").get("reason") == "ApplyFailed",
        timeout=60,
        what="the TrainingRun to report its refused Job",
    )
    ready = _condition(run, "Ready")
    assert ready["status"] == "False"
    assert f"Job {namespace}/vibration-1-train: HTTP 403" in ready["message"]
    assert "quota" in ready["message"]
    assert "job" not in (run["status"] or {}), "a Job that was refused is not claimed"
    warnings = wait_for(
        lambda: [e for e in _events(core, namespace, "vibration-1") if e.reason == "ApplyFailed"],
        bool,
        timeout=10,
        what="the ApplyFailed Event",
    )
    assert [e.type for e in warnings] == ["Warning"]
    core.delete_namespaced_resource_quota("no-jobs", namespace)
    run = wait_for(
        lambda: _get(custom, namespace, "TrainingRun", "vibration-1"),
        lambda obj: _condition(obj, "Ready").get("reason") in STARTED,
        timeout=60,
        what="the TrainingRun to create its Job once the quota is gone",
    )
    assert run["status"]["job"] == "vibration-1-train"
    assert len(core.list_namespaced_event(namespace).items) > 0
    refused_again = [
        e for e in _events(core, namespace, "vibration-1") if e.reason == "ApplyFailed"
    ]
    assert len(refused_again) == 1, "one Event for the refusal, not one per retry"


def test_a_registered_model_another_edge_model_owns_is_refused_and_the_fix_recovers(
    operator: OperatorProcess,
    cluster: ClusterHandle,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    batch: client.BatchV1Api,
    namespace: str,
    tmp_path: Path,
) -> None:
    """Two EdgeModels naming one registered model (as two namespaces' same-named models do
    by default on a shared MLflow): the first claims it, the second is refused, and so is
    a run of it; naming a registered model of its own recovers it."""
    assert cluster.settings is not None
    mlflow_uri = cluster.settings.mlflow_uri
    registered = f"it-owner-{uuid.uuid4().hex[:8]}"
    train_version(registered, mlflow_uri, tmp_path)  # made before owners: no tag
    _create(custom, namespace, edge_model("first", registry={"registeredModel": registered}))
    owner = f"{namespace}/first"
    wait_for(
        lambda: (read_model(mlflow_uri, registered) or RegisteredModel([], {})).tags,
        lambda tags: tags.get("edgeml.io/edge-model") == owner,
        timeout=30,
        what=f"{registered} tagged as {owner}'s",
    )
    _wait_condition(custom, namespace, "EdgeModel", "first", "Ready", "ChampionAvailable")

    _create(custom, namespace, edge_model("second", registry={"registeredModel": registered}))
    second = _wait_condition(
        custom, namespace, "EdgeModel", "second", "Ready", "RegisteredModelInUse"
    )
    assert f"belongs to EdgeModel {owner}" in _condition(second, "Ready")["message"]
    assert second["status"]["phase"] == "Invalid"
    assert not second["status"].get("champion")
    assert not second["status"].get("versions")
    warned = wait_for(
        lambda: [(e.type, e.reason) for e in _events(core, namespace, "second")],
        lambda got: ("Warning", "RegisteredModelInUse") in got,
        timeout=10,
        what="a Warning event RegisteredModelInUse on EdgeModel second",
    )
    assert ("Normal", "Promoted") not in warned
    _create(custom, namespace, training_run("second-1", model="second"))
    run = _wait_condition(
        custom, namespace, "TrainingRun", "second-1", "Ready", "RegisteredModelInUse"
    )
    assert run["status"]["phase"] == "Pending"
    assert batch.list_namespaced_job(namespace).items == []
    assert (read_model(mlflow_uri, registered) or RegisteredModel([], {})).tags[
        "edgeml.io/edge-model"
    ] == owner

    # A name of its own: nothing registered there yet, and the run may go on.
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "edgemodels", "second",
        {"spec": {"registry": {"registeredModel": f"{registered}-second"}}},
    )  # fmt: skip
    _wait_condition(custom, namespace, "EdgeModel", "second", "Ready", "NoChampion")
    _wait_condition(custom, namespace, "TrainingRun", "second-1", "Ready", STARTED)

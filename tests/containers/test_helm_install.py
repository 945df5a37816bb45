"""The install a platform team does, on real kubelets, from the project's images.

Namespaces enforce the restricted Pod Security Standard; `helm install` of the chart
with its own RBAC runs the operator from the operator image on the real training node;
a TrainingRun's Job trains from the training image there (reading an s3:// dataset
through the pod's forwards), the EdgeModel promotes the version; an EdgeDeployment's
canary pods run from the serving image on the real edge nodes, roll out, answer an
Open Inference Protocol request, and a version that fails every request is rolled back
under traffic; `helm upgrade` to a changed value hands over to the new operator pod;
`helm uninstall` leaves nothing of the release.
"""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client

from localcluster import build
from localcluster.fleet import RUNTIME_TAINT, SIMULATOR_LABEL
from localcluster.settings import REPO_ROOT
from support.cluster import ClusterHandle
from support.containers import image_ref, kubectl, restricted_namespace, tolerate_real_nodes
from support.datasets import write_vibration
from support.kube import job_condition, pod_ready
from support.models import Trained, register_failing, rows
from support.objects import PLURALS, edge_deployment, hermetic_edge_model, training_run
from support.objectstore import Bucket, create_credentials_secret
from support.operator import in_cluster_operator_stood_down
from support.rollout import ANALYSED, GROUP, VERSION, Rollout, time_rollback, traffic
from support.wait import wait_for

pytestmark = pytest.mark.timeout(900)

CHART = REPO_ROOT / "charts" / "edgeml"
MODEL, DEPLOYMENT = "vibration", "vibration-edge"
FEATURES = 8
RUNTIME_TOLERATION = {
    "key": RUNTIME_TAINT["key"],
    "operator": "Equal",
    "value": RUNTIME_TAINT["value"],
    "effect": "NoSchedule",
}
REAL_EDGE = {SIMULATOR_LABEL: "kubelet", "node-role.kubernetes.io/edge": "true"}


def _helm(cluster: ClusterHandle, *args: str) -> subprocess.CompletedProcess[str]:
    assert cluster.settings is not None
    return subprocess.run(
        [str(build.binary(cluster.settings, "helm")), "--kubeconfig", cluster.kubeconfig, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def _values(cluster: ClusterHandle, app_namespace: str) -> dict[str, Any]:
    assert cluster.settings is not None
    return {
        "watchNamespaces": [app_namespace],
        "mlflow": {"trackingUri": cluster.settings.mlflow_uri},
        "nodeSelector": {"kubernetes.io/hostname": "train-real-0"},
        "tolerations": [RUNTIME_TOLERATION],
        "training": {
            "nodeSelector": {SIMULATOR_LABEL: "kubelet", "edgeml.io/pool": "training"},
            "tolerations": [RUNTIME_TOLERATION],
            # The node is small and the test's dataset tiny.
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
        },
        "operator": {"resyncSeconds": 5},
    }


@pytest.fixture
def operator_namespace(
    cluster: ClusterHandle, core: client.CoreV1Api, custom: client.CustomObjectsApi, namespace: str
) -> Iterator[str]:
    """The release's namespace (the release is named after it). A test that fails half
    way leaves no release behind: its objects' finalizers are dropped, it is uninstalled."""
    name = f"edgeml-it-{uuid.uuid4().hex[:5]}"
    core.create_namespace({"metadata": {"name": name}})
    restricted_namespace(core, name)
    yield name
    for plural in ("edgedeployments", "trainingruns", "edgemodels", "driftpolicies"):
        for item in custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)[
            "items"
        ]:
            custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, item["metadata"]["name"],
                {"metadata": {"finalizers": None}},
            )  # fmt: skip
    _helm(cluster, "uninstall", name, "-n", name, "--ignore-not-found")
    core.delete_namespace(name, propagation_policy="Background")


def _release_objects(cluster: ClusterHandle, release: str, namespace: str) -> list[str]:
    """Every object Helm rendered for the release that is still there."""
    kinds = "deployment,serviceaccount,service,role,rolebinding,configmap,secret"
    selector = f"app.kubernetes.io/instance={release}"
    namespaced = kubectl(cluster, "get", kinds, "-n", namespace, "-l", selector, "-o", "name")
    cluster_wide = kubectl(cluster, "get", "clusterrole,clusterrolebinding", "-l", selector,
                           "-o", "name")  # fmt: skip
    assert namespaced.returncode == 0, namespaced.stderr
    assert cluster_wide.returncode == 0, cluster_wide.stderr
    names = namespaced.stdout.split() + cluster_wide.stdout.split()
    # Helm's own release record is a Secret without our labels.
    return [n for n in names if not n.startswith("secret/sh.helm.release")]


def _operator_pod(core: client.CoreV1Api, namespace: str) -> Any:
    pods = core.list_namespaced_pod(namespace, label_selector="app.kubernetes.io/name=edgeml")
    ready = [p for p in pods.items if pod_ready(p) and not p.metadata.deletion_timestamp]
    return ready[0] if len(ready) == 1 else None


def _wait_leads(cluster: ClusterHandle, namespace: str, pod: str) -> None:
    """Wait until the pod's own log (`kubectl logs`, through its kubelet) says it leads."""
    wait_for(
        lambda: kubectl(cluster, "logs", "-n", namespace, pod),
        lambda logs: logs.returncode == 0 and "now leads" in logs.stdout,
        timeout=90,
        what=f"operator pod {pod} to log that it leads",
    )


def _champion(custom: client.CustomObjectsApi, namespace: str) -> Any:
    model = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "edgemodels", MODEL)
    return (model.get("status") or {}).get("champion")


def test_helm_install_train_roll_out_roll_back_upgrade_uninstall(
    real_tier: list[str],
    cluster: ClusterHandle,
    api_client: client.ApiClient,
    core: client.CoreV1Api,
    batch: client.BatchV1Api,
    custom: client.CustomObjectsApi,
    crds: list[str],
    namespace: str,
    operator_namespace: str,
    bucket: Bucket,
    tmp_path: Path,
) -> None:
    if not cluster.local:
        pytest.skip("needs the local cluster's MLflow and object store (and its real nodes)")
    assert cluster.settings is not None
    mlflow = cluster.settings.mlflow_uri
    restricted_namespace(core, namespace)
    release = operator_namespace  # unique: cluster-wide names derive from it
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(_values(cluster, namespace)))

    with in_cluster_operator_stood_down(api_client), contextlib.ExitStack() as stack:
        # 1. helm install: the operator runs from its image under restricted security.
        installed = _helm(cluster, "install", release, str(CHART), "-n", operator_namespace,
                          "-f", str(values), "--wait", "--timeout", "3m")  # fmt: skip
        assert installed.returncode == 0, installed.stdout + installed.stderr
        pod = wait_for(
            lambda: _operator_pod(core, operator_namespace),
            lambda p: p is not None,
            timeout=120,
            what="the operator pod to be ready",
        )
        assert pod.spec.node_name == "train-real-0"
        assert pod.spec.containers[0].image == image_ref("operator")
        _wait_leads(cluster, operator_namespace, pod.metadata.name)

        # 2. Training from the training image, on an s3:// dataset.
        data = write_vibration(tmp_path).read_bytes()
        bucket.put_bytes("vibration/2026-01.csv", data)
        create_credentials_secret(core, namespace)
        model = hermetic_edge_model(
            MODEL,
            training={
                "dataset": {
                    "uri": bucket.uri("vibration/2026-01.csv"),
                    "target": "label",
                    "s3": {
                        "endpoint": bucket.endpoint,
                        "credentialsSecretRef": {"name": "dataset-keys"},
                    },
                },
            },
        )
        registered = model["spec"]["registry"]["registeredModel"]
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURALS["EdgeModel"], model
        )
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURALS["TrainingRun"], training_run(model=MODEL)
        )
        job = wait_for(
            lambda: batch.list_namespaced_job(namespace).items,
            lambda jobs: len(jobs) == 1 and job_condition(jobs[0], "Complete"),
            timeout=300,
            what="the training Job to complete on the real training node",
        )[0]
        trainer = core.list_namespaced_pod(
            namespace, label_selector=f"job-name={job.metadata.name}"
        ).items[0]
        assert trainer.spec.node_name == "train-real-0"
        assert trainer.spec.containers[0].image == image_ref("training")
        assert trainer.spec.containers[0].security_context.read_only_root_filesystem is True
        champion = wait_for(
            lambda: _champion(custom, namespace),
            lambda c: bool(c and c.get("sha256")),
            timeout=120,
            what="the trained version to become champion",
        )
        good = int(champion["version"])

        # 3. A rollout to the real edge nodes, from the serving image.
        body = edge_deployment(
            DEPLOYMENT,
            MODEL,
            nodeSelector=REAL_EDGE,
            tolerations=tolerate_real_nodes(),
            modelRef={"name": MODEL, "version": good},
            strategy=ANALYSED,
        )
        body["spec"]["modelRef"].pop("alias", None)
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "edgedeployments", body)
        ed = Rollout(custom, core, namespace, DEPLOYMENT)
        # The edge's own clients from the start: analysis needs samples to pass a wave.
        load = traffic(core, namespace, DEPLOYMENT, MODEL, features=FEATURES)
        stack.enter_context(load)
        ed.wait_phase("Healthy", good)
        assert ed.served() == {"edge-real-0": str(good), "edge-real-1": str(good)}
        serving = core.list_namespaced_pod(
            namespace, label_selector=f"edgeml.io/deployment={DEPLOYMENT}"
        ).items
        assert {p.spec.containers[0].image for p in serving} == {image_ref("serving")}
        request = {"inputs": [{"name": "input", "shape": [1, FEATURES], "datatype": "FP32",
                               "data": rows(1, features=FEATURES)[0].tolist()}]}  # fmt: skip
        reply = httpx.post(
            f"http://{serving[0].status.pod_ip}:8080/v2/models/{MODEL}/infer",
            json=request,
            timeout=10,
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["outputs"], reply.text

        # 4. A version that fails every request: rolled back under traffic.
        from mlflow import MlflowClient

        run_id = MlflowClient(mlflow, mlflow).get_model_version(registered, str(good)).run_id
        of = Trained(good, champion["sha256"], run_id)
        failing = register_failing(registered, mlflow, of, features=FEATURES)
        ed.roll_to(MODEL, failing.version)
        took = time_rollback(ed, failing.version, good, nodes=2)
        assert "error-rate" in took.reason, took
        print(f"rollback on real kubelets: {took.seconds:.1f}s from the {took.since}")

        # 5. helm upgrade to a changed value: a new operator pod takes over.
        upgraded = _helm(cluster, "upgrade", release, str(CHART), "-n", operator_namespace,
                         "--reuse-values", "--set", "operator.logFormat=text",
                         "--wait", "--timeout", "3m")  # fmt: skip
        assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
        new = wait_for(
            lambda: _operator_pod(core, operator_namespace),
            lambda p: p is not None and p.metadata.name != pod.metadata.name,
            timeout=120,
            what="the upgraded operator pod to be ready alone",
        )
        _wait_leads(cluster, operator_namespace, new.metadata.name)
        # It kept the rollback (status survives the operator) and acts: pinned back to
        # the good version, the deployment is Healthy on it again.
        assert ed.status()["phase"] == "RolledBack"
        ed.pin(good)
        ed.wait_phase("Healthy", good)
        stack.close()  # the clients stop before the objects go

        # 6. helm uninstall: the app's objects first (their finalizers need the operator).
        for plural in ("edgedeployments", "trainingruns", "edgemodels"):
            custom.delete_collection_namespaced_custom_object(GROUP, VERSION, namespace, plural)
        wait_for(
            lambda: [
                o
                for plural in ("edgedeployments", "trainingruns", "edgemodels")
                for o in custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)[
                    "items"
                ]
            ],
            lambda left: left == [],
            timeout=90,
            what="the operator to release its objects",
        )
        # With watchNamespaces, the operator's rights in the app namespace are a RoleBinding.
        assert f"rolebinding.rbac.authorization.k8s.io/{release}" in _release_objects(
            cluster, release, namespace
        )
        removed = _helm(cluster, "uninstall", release, "-n", operator_namespace, "--wait")
        assert removed.returncode == 0, removed.stdout + removed.stderr
        assert _release_objects(cluster, release, operator_namespace) == []
        # The RoleBinding in the watched namespace went too.
        assert _release_objects(cluster, release, namespace) == []
        wait_for(
            lambda: core.list_namespaced_pod(operator_namespace).items,
            lambda pods: pods == [],
            timeout=60,
            what="the operator pods to be gone",
        )
        # The Lease is the operator's, not Helm's: it belongs to the release's
        # ServiceAccount, so the garbage collector deletes it once that is gone.
        coordination = client.CoordinationV1Api(api_client)
        wait_for(
            lambda: coordination.list_namespaced_lease(operator_namespace).items,
            lambda leases: leases == [],
            timeout=60,
            what="the operator's Lease to go with its ServiceAccount",
        )
        # Left: the namespace, which the fixture deletes.

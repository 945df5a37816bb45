"""What the chart renders against the confused deputy: one admission policy per kind that
names Secrets, the training volume list the operator and the policy share, and the
namespaces the bindings cover (helm template). tests/integration/test_admission_policy.py
runs the same policies on the API server."""

from __future__ import annotations

from typing import Any

from unit.chart.helm import documents, render

KINDS = ("edgemodel", "trainingrun", "driftpolicy")


def _of_kind(kind: str, *values: str) -> list[dict[str, Any]]:
    return [d for d in documents(render(*values)) if d["kind"] == kind]


def test_each_kind_that_names_secrets_has_a_policy_and_a_denying_binding() -> None:
    policies = {p["metadata"]["name"]: p for p in _of_kind("ValidatingAdmissionPolicy")}
    bindings = {b["metadata"]["name"]: b for b in _of_kind("ValidatingAdmissionPolicyBinding")}
    assert sorted(policies) == sorted(bindings) == sorted(f"edgeml-{k}-references" for k in KINDS)
    for name, binding in bindings.items():
        assert binding["spec"]["policyName"] == name
        assert binding["spec"]["validationActions"] == ["Deny"]
        assert "matchResources" not in binding["spec"]  # every namespace: none is watched
        assert policies[name]["spec"]["failurePolicy"] == "Fail"
        rules = policies[name]["spec"]["matchConstraints"]["resourceRules"]
        assert rules[0]["operations"] == ["CREATE", "UPDATE"]


def _volume_types_of_policy(*values: str) -> str:
    policy = next(
        p
        for p in _of_kind("ValidatingAdmissionPolicy", *values)
        if p["metadata"]["name"] == "edgeml-edgemodel-references"
    )
    first = policy["spec"]["variables"][0]  # the local overlay patches it by position
    assert first["name"] == "allowedVolumeTypes"
    return str(first["expression"])


def _volume_types_of_operator(*values: str) -> str:
    (deployment,) = _of_kind("Deployment", *values)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    return env["EDGEML_TRAINING_VOLUME_TYPES"]


def test_the_operator_and_the_policy_get_the_same_volume_list() -> None:
    assert _volume_types_of_operator() == "persistentVolumeClaim,configMap,secret,emptyDir,csi"
    assert _volume_types_of_policy() == (
        "['persistentVolumeClaim','configMap','secret','emptyDir','csi']"
    )
    with_hostpath = ("--set", "training.allowedVolumeTypes={emptyDir,hostPath}")
    assert _volume_types_of_operator(*with_hostpath) == "emptyDir,hostPath"
    assert _volume_types_of_policy(*with_hostpath) == "['emptyDir','hostPath']"


def test_with_watched_namespaces_the_bindings_cover_only_those() -> None:
    values = ("--set", "watchNamespaces={team-a,team-b}")
    for binding in _of_kind("ValidatingAdmissionPolicyBinding", *values):
        assert binding["spec"]["matchResources"]["namespaceSelector"] == {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "In",
                    "values": ["team-a", "team-b"],
                }
            ]
        }


def test_the_policies_can_be_left_out() -> None:
    values = ("--set", "admissionPolicy.enabled=false")
    assert _of_kind("ValidatingAdmissionPolicy", *values) == []
    assert _of_kind("ValidatingAdmissionPolicyBinding", *values) == []
    assert _volume_types_of_operator(*values)  # the operator still refuses volumes itself

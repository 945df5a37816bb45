"""The chart's RBAC: namespaced rights only where the operator works (helm template;
skipped where no helm binary is found)."""

from __future__ import annotations

from typing import Any

from unit.chart.helm import documents, render

CLUSTER_SCOPED = {"customresourcedefinitions", "namespaces", "nodes", "clusterkopfpeerings"}


def _rbac(*values: str) -> list[dict[str, Any]]:
    kinds = {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    return [d for d in documents(render(*values)) if d["kind"] in kinds]


def _resources(role: dict[str, Any]) -> set[str]:
    return {r for rule in role["rules"] for r in rule["resources"]}


def test_the_cluster_scope_role_holds_only_cluster_scoped_reads() -> None:
    roles = {d["metadata"]["name"]: d for d in _rbac() if d["kind"] == "ClusterRole"}
    scope = roles["edgeml-cluster-scope"]
    assert _resources(scope) <= CLUSTER_SCOPED
    assert {v for rule in scope["rules"] for v in rule["verbs"]} <= {"get", "list", "watch"}
    assert not _resources(roles["edgeml"]) & CLUSTER_SCOPED


def test_watching_all_namespaces_binds_both_roles_cluster_wide() -> None:
    bindings = {(d["kind"], d["metadata"]["name"], d["roleRef"]["name"])
                for d in _rbac() if d["kind"].endswith("Binding")}  # fmt: skip
    assert ("ClusterRoleBinding", "edgeml", "edgeml") in bindings
    assert ("ClusterRoleBinding", "edgeml-cluster-scope",
            "edgeml-cluster-scope") in bindings  # fmt: skip


def test_watched_namespaces_get_role_bindings_and_nothing_namespaced_is_cluster_wide() -> None:
    docs = _rbac("--set", "watchNamespaces={team-a,team-b}")
    cluster_bindings = [d["roleRef"]["name"] for d in docs if d["kind"] == "ClusterRoleBinding"]
    assert cluster_bindings == ["edgeml-cluster-scope"]
    namespaced = sorted(
        d["metadata"]["namespace"]
        for d in docs
        if d["kind"] == "RoleBinding" and d["roleRef"]["name"] == "edgeml"
    )
    # The release's own namespace too: operator-wide receivers' Secrets and its Events.
    assert namespaced == ["edgeml-system", "team-a", "team-b"]
    for binding in (d for d in docs if d["kind"].endswith("Binding")):
        (subject,) = binding["subjects"]
        assert subject == {
            "kind": "ServiceAccount",
            "name": "edgeml",
            "namespace": "edgeml-system",
        }


def test_the_release_namespace_is_bound_once_when_it_is_watched_too() -> None:
    docs = _rbac("--set", "watchNamespaces={edgeml-system,team-a}")
    namespaced = sorted(
        d["metadata"]["namespace"]
        for d in docs
        if d["kind"] == "RoleBinding" and d["roleRef"]["name"] == "edgeml"
    )
    assert namespaced == ["edgeml-system", "team-a"]

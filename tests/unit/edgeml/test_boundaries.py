"""The world is touched in one place per system: an import check over the package.

Only kube/ imports the Kubernetes client; only registry/ and training/ import mlflow; only
datasource/ imports boto3; kopf
stays in controllers/, runtime.py and kube/; and the pure layers (api/, plans/) import
nothing that does I/O, directly or through another edgeml module.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[3] / "operator" / "edgeml"

IO_MODULES = (
    "kubernetes",
    "kopf",
    "mlflow",
    "requests",
    "urllib",
    "urllib3",
    "httpx",
    "aiohttp",
    "http.client",
    "socket",
    "subprocess",
    "boto3",
    "botocore",
)


@dataclass(frozen=True)
class Import:
    module: str  # the dotted name imported, e.g. kubernetes.client
    line: int


@dataclass(frozen=True)
class Rule:
    """Modules matching `forbidden` may be imported only by files under `allowed`."""

    forbidden: tuple[str, ...]
    allowed: tuple[str, ...] = ()  # package-relative: "edgeml/kube/", "edgeml/runtime.py"
    only: tuple[str, ...] = ("edgeml/",)  # the files the rule applies to
    transitive: bool = False  # also through other edgeml modules


PURE = ("edgeml/api/", "edgeml/plans/", "edgeml/rollout/")
RULES = {
    "kubernetes only in kube/": Rule(("kubernetes",), ("edgeml/kube/",)),
    "mlflow only in registry/ and training/": Rule(
        # serving/fetch.py downloads the model in a child process; nothing else there may.
        ("mlflow",),
        ("edgeml/registry/", "edgeml/training/", "edgeml/serving/fetch.py"),
    ),
    "the object store only in datasource/": Rule(("boto3", "botocore"), ("edgeml/datasource/",)),
    "kopf only in controllers/, runtime.py and kube/": Rule(
        ("kopf",), ("edgeml/controllers/", "edgeml/runtime.py", "edgeml/kube/")
    ),
    "api/ and plans/ do no I/O": Rule(IO_MODULES, only=PURE, transitive=True),  # rollout/ too
}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(source: str, module: str) -> list[Import]:
    """Every module `source` imports (at any depth, not under TYPE_CHECKING), absolute.

    `module` is the dotted name of the file (edgeml.plans.common), to resolve relative
    imports; `importlib.import_module("x")` with a literal name counts too.
    """
    found: list[Import] = []
    package = module.rsplit(".", 1)[0] if not module.endswith("__init__") else module

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend(Import(alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.removesuffix(".__init__").split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.append(Import(base, node.lineno))
            found.extend(Import(f"{base}.{alias.name}", node.lineno) for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (
                    isinstance(node.func, ast.Name)
                    and node.func.id in ("import_module", "__import__")
                )
            )
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append(Import(node.args[0].value, node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return found


def matches(name: str, prefixes: tuple[str, ...]) -> str | None:
    return next((p for p in prefixes if name == p or name.startswith(p + ".")), None)


@functools.cache
def modules_in(package: Path) -> dict[str, tuple[str, list[Import]]]:
    """Dotted module name → (package-relative path, imports) for every .py under `package`."""
    root = package.parent
    out = {}
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(root)
        dotted = ".".join(rel.with_suffix("").parts)
        out[dotted.removesuffix(".__init__")] = (
            rel.as_posix(),
            imports_of(path.read_text(), dotted),
        )
    return out


def violations(package: Path, rule: Rule) -> list[str]:
    """One line per offending import: which module imports what, where (and through what)."""
    modules = modules_in(package)
    problems = []
    for name, (rel, _) in modules.items():
        if not rel.startswith(rule.only) or rel.startswith(rule.allowed):
            continue
        # Breadth-first through edgeml modules, remembering the chain for the message.
        seen = {name}
        queue = [(name, [rel])]
        while queue:
            current, chain = queue.pop(0)
            for i in modules[current][1]:
                if matches(i.module, rule.forbidden):
                    if len(chain) == 1:
                        problems.append(f"{rel}:{i.line} imports {i.module}")
                    else:
                        via = " -> ".join(chain[1:])
                        problems.append(f"{rel} imports {i.module} via {via} (line {i.line})")
                if not rule.transitive:
                    continue
                # Importing a.b.c runs a/__init__.py and a/b/__init__.py too.
                parts = i.module.split(".")
                for target in (".".join(parts[:n]) for n in range(1, len(parts) + 1)):
                    if target in modules and target not in seen:
                        seen.add(target)
                        queue.append((target, [*chain, modules[target][0]]))
    return sorted(set(problems))


# --- the rules hold for the package ---------------------------------------------------------


def test_the_package_is_where_we_think() -> None:
    assert (PACKAGE / "__init__.py").exists()
    assert "edgeml.plans.common" in modules_in(PACKAGE)


@pytest.mark.parametrize("rule", list(RULES), ids=list(RULES))
def test_import_boundaries(rule: str) -> None:
    found = violations(PACKAGE, RULES[rule])
    assert not found, f"{rule}, but:\n  " + "\n  ".join(found)


@pytest.mark.parametrize(
    "module", sorted(m for m, (rel, _) in modules_in(PACKAGE).items() if rel.startswith(PURE))
)
def test_pure_modules_import_only_pure_edgeml_modules_directly(module: str) -> None:
    rel, imports = modules_in(PACKAGE)[module]
    impure = [
        f"{rel}:{i.line} imports {i.module}"
        for i in imports
        if matches(i.module, ("edgeml.kube", "edgeml.controllers", "edgeml.runtime"))
    ]
    assert not impure, "\n".join(impure)


# --- the checker itself -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        ("import kubernetes", "edgeml.x", ["kubernetes"]),
        ("import kubernetes.client as k", "edgeml.x", ["kubernetes.client"]),
        ("from kubernetes import client", "edgeml.x", ["kubernetes", "kubernetes.client"]),
        ("def f():\n    import kopf\n", "edgeml.x", ["kopf"]),
        (
            "class C:\n    def m(self):\n        from mlflow import X\n",
            "edgeml.x",
            ["mlflow", "mlflow.X"],
        ),
        (
            "import importlib\nimportlib.import_module('requests')",
            "edgeml.x",
            ["importlib", "requests"],
        ),
        ("__import__('socket')", "edgeml.x", ["socket"]),
        ("from . import common", "edgeml.plans.x", ["edgeml.plans", "edgeml.plans.common"]),
        ("from ..kube import reads", "edgeml.plans.x", ["edgeml.kube", "edgeml.kube.reads"]),
        (
            "from .common import A",
            "edgeml.plans.__init__",
            ["edgeml.plans.common", "edgeml.plans.common.A"],
        ),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import kopf\n",
            "edgeml.x",
            ["typing", "typing.TYPE_CHECKING"],
        ),
        ("if TYPE_CHECKING:\n    import kopf\nelse:\n    import json\n", "edgeml.x", ["json"]),
    ],
)
def test_imports_of_finds_every_form(source: str, module: str, expected: list[str]) -> None:
    assert [i.module for i in imports_of(source, module)] == expected


def fake_package(tmp_path: Path, files: dict[str, str]) -> Path:
    package = tmp_path / "edgeml"
    for name, source in {"__init__.py": "", **files}.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return package


@pytest.mark.parametrize(
    ("files", "rule", "expected"),
    [
        (
            {
                "registry/client.py": "import mlflow\n",
                "training/train.py": "from mlflow import log_metric\n",
            },
            "mlflow only in registry/ and training/",
            [],
        ),
        (
            {"api/models.py": "import json\nimport mlflow.tracking\n"},
            "mlflow only in registry/ and training/",
            ["edgeml/api/models.py:2 imports mlflow.tracking"],
        ),
        (
            {
                "kube/client.py": "import kubernetes\n",
                "plans/x.py": "from kubernetes import client\n",
            },
            "kubernetes only in kube/",
            [
                "edgeml/plans/x.py:1 imports kubernetes",
                "edgeml/plans/x.py:1 imports kubernetes.client",
            ],
        ),
        (
            {
                "runtime.py": "import kopf\n",
                "controllers/h.py": "import kopf\n",
                "metrics.py": "import kopf\n",
            },
            "kopf only in controllers/, runtime.py and kube/",
            ["edgeml/metrics.py:1 imports kopf"],
        ),
        (
            {"plans/x.py": "def f():\n    import subprocess\n"},
            "api/ and plans/ do no I/O",
            ["edgeml/plans/x.py:2 imports subprocess"],
        ),
        (
            {
                "plans/x.py": "from edgeml.helpers import y\n",
                "helpers.py": "import urllib.request\n",
            },
            "api/ and plans/ do no I/O",
            ["edgeml/plans/x.py imports urllib.request via edgeml/helpers.py (line 1)"],
        ),
        (
            {
                "plans/x.py": "from edgeml.registry.versions import V\n",
                "registry/__init__.py": "from edgeml.registry.client import C\n",
                "registry/client.py": "import mlflow\n",
                "registry/versions.py": "V = 1\n",
            },
            "api/ and plans/ do no I/O",
            [
                "edgeml/plans/x.py imports mlflow via edgeml/registry/__init__.py -> "
                "edgeml/registry/client.py (line 1)"
            ],
        ),
        (
            {"api/x.py": "from http import HTTPStatus\nfrom http import client\n"},
            "api/ and plans/ do no I/O",
            ["edgeml/api/x.py:2 imports http.client"],
        ),
    ],
)
def test_the_rules_catch_offenders_even_in_packages_not_yet_written(
    tmp_path: Path, files: dict[str, str], rule: str, expected: list[str]
) -> None:
    assert violations(fake_package(tmp_path, files), RULES[rule]) == expected

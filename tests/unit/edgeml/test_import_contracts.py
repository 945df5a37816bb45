"""The layer rules (pyproject.toml, [tool.importlinter]) hold for the package, and each
catches what it is there to catch, also in a package not written yet.

The contracts are import-linter's; these tests check our configuration of them: that
the standard library and third-party packages are in the graph (a pure module that
imports `socket` is caught), that indirect imports count, and that a new package falls
under the rules without anyone adding it to a list.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports over the `edgeml` package under `root`, with the repository's contracts."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(REPO / "pyproject.toml")],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_package_keeps_every_contract() -> None:
    result = lint_imports(REPO / "operator")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("pristine")
    shutil.copytree(REPO / "operator" / "edgeml", copy / "edgeml",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    return copy


@pytest.mark.parametrize(
    ("files", "broken"),
    [
        pytest.param(
            {"plans/zz_offender.py": "import kubernetes\n"},
            ["no kubernetes client package", "the pure layers do no I/O"],
            id="a plan that calls the API server",
        ),
        pytest.param(
            {"kube/zz_offender.py": "from kubernetes import client\n"},
            ["no kubernetes client package"],
            id="the kubernetes client package, even in kube/",
        ),
        pytest.param(
            {"plans/zz_offender.py": "def f() -> None:\n    import socket\n"},
            ["the pure layers do no I/O"],
            id="the standard library's I/O, imported inside a function",
        ),
        pytest.param(
            {
                "plans/zz_offender.py": "from edgeml import zz_helpers\n",
                "zz_helpers.py": "import urllib.request\n",
            },
            ["the pure layers do no I/O"],
            id="I/O through another module",
        ),
        pytest.param(
            {"zz_newpackage/__init__.py": "", "zz_newpackage/x.py": "import kopf\n"},
            ["kopf only in controllers/, runtime.py and kube/"],
            id="kopf in a package not written yet",
        ),
        pytest.param(
            {"serving/zz_offender.py": "import mlflow\n"},
            ["mlflow only in registry/ and training/"],
            id="mlflow in the edge server",
        ),
        pytest.param(
            {"kube/zz_offender.py": "from edgeml.plans import common\n"},
            ["the I/O layer acts, it does not decide"],
            id="the I/O layer importing plans",
        ),
        pytest.param(
            {"api/zz_offender.py": "from edgeml.objects import meta\n"},
            ["no import cycle between packages"],
            id="a cycle between packages",
        ),
    ],
)
def test_each_contract_catches_its_offender(
    pristine: Path, tmp_path: Path, files: dict[str, str], broken: list[str]
) -> None:
    shutil.copytree(pristine, tmp_path, dirs_exist_ok=True)
    for name, source in files.items():
        (tmp_path / "edgeml" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "edgeml" / name).write_text(source)
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    report = result.stdout.split("Broken contracts", 1)[-1]
    headings = [line for line in report.splitlines() if line and not line.startswith(("-", " "))]
    for contract in broken:
        assert any(h.startswith(contract) for h in headings), result.stdout

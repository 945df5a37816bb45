"""The helm binary the chart-rendering unit tests use, when there is one."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from unit.chart.values import CHART


def find_helm() -> str | None:
    """The helm binary: EDGEML_HELM, the one `hack/cluster build` made, or helm on PATH."""
    named = os.environ.get("EDGEML_HELM")
    if named:
        return named
    try:
        from localcluster.build import binary
        from localcluster.settings import Settings

        built = binary(Settings(), "helm")
    except (ImportError, KeyError):
        built = None
    if built is not None and built.exists():
        return str(built)
    return shutil.which("helm")


def render(*extra: str, release: str = "edgeml", namespace: str = "edgeml-system") -> str:
    """`helm template` of the chart; skips the test where no helm is found."""
    result = run_helm("template", release, str(CHART), "--namespace", namespace,
                      "--kube-version", "1.35.4", *extra)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


def run_helm(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run helm; skip the test where none is found (`hack/cluster build` makes one)."""
    helm = find_helm()
    if helm is None:
        pytest.skip("helm not found: run `hack/cluster build`, or set EDGEML_HELM")
    return subprocess.run([helm, *argv], capture_output=True, text=True, check=False)


def documents(text: str) -> list[dict[str, Any]]:
    """The non-empty YAML documents of a rendering."""
    return [d for d in yaml.safe_load_all(text) if d]

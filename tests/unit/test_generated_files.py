"""Generated files are checked in; they must match what the models generate now."""

from __future__ import annotations

from pathlib import Path

from edgeml.api.crds import stale_crds
from edgeml.api.docs import render_api_docs

REPO = Path(__file__).resolve().parents[2]


def test_checked_in_crds_match_the_models() -> None:
    assert stale_crds(REPO / "crds") == [], "run `edgeml crds`"
    assert stale_crds(REPO / "charts" / "edgeml" / "crds") == [], "run hack/render-manifests"


def test_api_docs_match_the_models() -> None:
    assert (REPO / "docs" / "api.md").read_text() == render_api_docs(), "run `edgeml api-docs`"

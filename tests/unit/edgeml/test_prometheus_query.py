"""The PromQL the Prometheus metrics source sends: exact series, exact pods, safe quoting."""

from __future__ import annotations

import re

from edgeml.prometheus import pod_series_query
from edgeml.rollout.signals import SAMPLE_NAMES


def _matchers(query: str) -> dict[str, tuple[str, str]]:
    """label → (operator, the regex or value as PromQL reads it)."""
    body = query.strip().removeprefix("{").removesuffix("}")
    out = {}
    for label, op, quoted in re.findall(r'(\w+)\s*(=~|=)\s*("(?:[^"\\]|\\.)*")', body):
        out[label] = (op, quoted[1:-1].encode().decode("unicode_escape"))
    return out


def test_the_query_names_every_analysis_series_and_only_the_given_pods() -> None:
    m = _matchers(pod_series_query("team-a", ["ed-v2-abc", "ed-v2-def"]))
    assert m["namespace"] == ("=", "team-a")
    op, names = m["__name__"]
    assert op == "=~"
    for name in SAMPLE_NAMES:
        assert re.fullmatch(names, name)
    assert not re.fullmatch(names, "edgeml_serve_requests_created")
    op, pods = m["pod"]
    assert op == "=~"
    assert re.fullmatch(pods, "ed-v2-abc")
    assert re.fullmatch(pods, "ed-v2-def")
    assert not re.fullmatch(pods, "ed-v2-abcd")
    assert not re.fullmatch(pods, "ed-v2-ab")


def test_label_names_follow_the_servers_relabelling() -> None:
    m = _matchers(
        pod_series_query("ns", ["p"], pod_label="kubernetes_pod_name", namespace_label="kns")
    )
    assert set(m) == {"__name__", "kns", "kubernetes_pod_name"}


def test_a_namespace_cannot_break_out_of_its_string() -> None:
    query = pod_series_query('a", pod=~".*', ["p"])
    assert _matchers(query)["namespace"] == ("=", 'a", pod=~".*')
    assert _matchers(query)["pod"][1] == "p"

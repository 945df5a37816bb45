"""The PromQL the Prometheus metrics source sends: exact series, exact pods, safe quoting."""

from __future__ import annotations

import re

import pytest

from edgeml.prometheus.queries import pod_series_query, samples_of, window_rows
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


def _series(pod: str, job: str, value: str, **labels: str) -> dict[str, object]:
    metric = {"__name__": SAMPLE_NAMES[0], "pod": pod, "job": job, **labels}
    return {"metric": metric, "value": [1700000000.0, value]}


def test_a_series_scraped_by_two_jobs_counts_once_and_series_without_a_pod_are_ignored() -> None:
    result = [
        _series("ed-v2-abc", "edge", "7", code="200"),
        _series("ed-v2-abc", "central", "7", code="200"),  # the same series, another scrape
        _series("ed-v2-abc", "edge", "1", code="500"),
        _series("", "edge", "3", code="200"),
    ]
    samples = samples_of(result, "pod")
    assert sorted(samples) == ["ed-v2-abc"]
    assert sorted((labels["code"], value) for _, labels, value in samples["ed-v2-abc"]) == [
        ("200", 7.0),
        ("500", 1.0),
    ]


def test_a_reply_that_is_not_a_vector_of_series_is_an_error_not_a_sample() -> None:
    with pytest.raises((KeyError, TypeError, ValueError, IndexError, AttributeError)):
        samples_of([{"metric": {"__name__": SAMPLE_NAMES[0], "pod": "p"}, "value": []}], "pod")
    with pytest.raises((KeyError, TypeError, ValueError, IndexError)):
        window_rows([{"value": [0, "1"]}])

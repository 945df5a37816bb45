"""The Prometheus source reading replies over real HTTP: good, duplicated and broken ones.

The e2e test runs a real Prometheus; these replies are the ones a real one sends only
when misconfigured (a second scrape job, an HA pair, a wrong address), served from
loopback so each shape can be pinned down.
"""

from __future__ import annotations

import http.server
import json
from collections.abc import Iterator

import pytest

from edgeml.prometheus.client import PrometheusUnavailableError, pod_samples
from support.httpd import serving


def _series(job: str, value: str = "7") -> dict[str, object]:
    metric = {
        "__name__": "edgeml_serve_requests_total",
        "outcome": "ok",
        "namespace": "ns",
        "pod": "p1",
        "job": job,
        "instance": f"{job}:8080",
    }
    return {"metric": metric, "value": [1.0, value]}


REPLIES: dict[str, object] = {
    "/twice/api/v1/query": {
        "status": "success",
        "data": {"resultType": "vector", "result": [_series("a"), _series("b")]},
    },
    "/broken/api/v1/query": {"status": "success", "data": {"resultType": "vector", "result": [{}]}},
    "/matrix/api/v1/query": {"status": "success", "data": {"resultType": "matrix", "result": []}},
    "/nodata/api/v1/query": {"status": "success", "data": "nope"},
}


class _Replies(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = json.dumps(REPLIES.get(self.path, {"status": "error", "error": "no"})).encode()
        self.send_response(200 if self.path in REPLIES else 400)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serving(_Replies) as base:
        yield base


def test_a_series_scraped_by_two_jobs_counts_once(server: str) -> None:
    samples = pod_samples(f"{server}/twice", "ns", ["p1"], 5)
    assert list(samples) == ["p1"]
    assert [(name, value) for name, _, value in samples["p1"]] == [
        ("edgeml_serve_requests_total", 7.0)
    ]


@pytest.mark.parametrize("path", ["/broken", "/matrix", "/nodata", "/refused"])
def test_a_reply_analysis_cannot_read_is_the_sources_error(server: str, path: str) -> None:
    with pytest.raises(PrometheusUnavailableError):
        pod_samples(f"{server}{path}", "ns", ["p1"], 5)

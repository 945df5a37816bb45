"""Probe defaults, thresholds, ports, and real TCP/HTTP probes against loopback."""

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest

from localcluster.agent import probes
from localcluster.agent.probes import (
    ProbeState,
    Target,
    container_probes,
    probe_spec,
    record,
    resolve_port,
    run_probe,
)

pytestmark = pytest.mark.unit


def test_defaults() -> None:
    spec = probe_spec("liveness", {"httpGet": {"port": 80}})
    assert (spec.initial_delay, spec.period, spec.timeout) == (0, 10, 1)
    assert (spec.success_threshold, spec.failure_threshold) == (1, 3)
    specs = container_probes(
        {
            "readinessProbe": {"tcpSocket": {"port": 1}},
            "startupProbe": {"exec": {"command": ["true"]}},
        }
    )
    assert sorted(specs) == ["readiness", "startup"]


def test_thresholds() -> None:
    spec = probe_spec("readiness", {"successThreshold": 2, "failureThreshold": 2})
    s = ProbeState()
    s = record(s, True, spec)
    assert s.result is None
    s = record(s, True, spec)
    assert s.result is True
    s = record(s, False, spec, "boom")
    assert s.result is True
    assert s.message == "boom"
    s = record(s, False, spec)
    assert s.result is False
    s = record(s, True, spec)
    assert s.result is False  # one success is not enough to flip back
    assert record(s, True, spec).result is True


def test_resolve_port() -> None:
    c = {"ports": [{"name": "http", "containerPort": 8080}]}
    assert resolve_port(80, c) == 80
    assert resolve_port("81", c) == 81
    assert resolve_port("http", c) == 8080
    with pytest.raises(ValueError, match="no container port named"):
        resolve_port("grpc", c)


@pytest.fixture
def server() -> Iterator[int]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/ok" else 503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield httpd.server_address[1]
    httpd.shutdown()


def target(container: dict | None = None) -> Target:
    return Target(
        ns_path=None, pod_ip="127.0.0.1", pid=0, env={}, working_dir="/", container=container or {}
    )


def test_http_and_tcp_probes(server: int) -> None:
    ok = probe_spec("readiness", {"httpGet": {"path": "/ok", "port": "web"}})
    assert run_probe(ok, target({"ports": [{"name": "web", "containerPort": server}]})) == (
        True,
        "",
    )
    bad = probe_spec("readiness", {"httpGet": {"path": "/bad", "port": server}})
    success, message = run_probe(bad, target())
    assert not success
    assert "503" in message
    assert run_probe(probe_spec("liveness", {"tcpSocket": {"port": server}}), target())[0]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    assert not run_probe(probe_spec("liveness", {"tcpSocket": {"port": closed}}), target())[0]


def test_exec_probe_needs_a_running_container() -> None:
    assert run_probe(probe_spec("liveness", {"exec": {"command": ["true"]}}), target()) == (
        False,
        "container is not running",
    )


def test_prober_reports_results(server: int) -> None:
    seen: list[ProbeState] = []
    got = threading.Event()

    def on_result(spec: probes.ProbeSpec, state: ProbeState) -> None:
        seen.append(state)
        got.set()

    p = probes.Prober(
        probe_spec("readiness", {"httpGet": {"path": "/ok", "port": server}, "periodSeconds": 1}),
        target(),
        on_result,
    )
    p.start()
    assert got.wait(5)
    p.stop()
    assert seen[0].result is True

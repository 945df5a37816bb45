"""A webhook receiver on loopback that keeps every JSON body POSTed to it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kubernetes import client


class Receiver:
    """An Alertmanager-style receiver: 200 to every POST, the bodies kept in order."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def statuses(self) -> list[tuple[str, str]]:
        """(status, fingerprint) of each message, in arrival order."""
        return [(b["status"], b["alerts"][0]["fingerprint"]) for b in self.received]

    def close(self) -> None:
        self.server.shutdown()


@contextmanager
def receiver() -> Iterator[Receiver]:
    """A Receiver for the duration of the block."""
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def receiver_secret(core: client.CoreV1Api, namespace: str, name: str, url: str) -> None:
    """The labelled Secret that names the receiver (replaced if it exists)."""
    body = {
        "metadata": {"name": name, "labels": {"edgeml.io/receiver": "true"}},
        "stringData": {"url": url},
    }
    try:
        core.create_namespaced_secret(namespace, body)
    except client.ApiException as err:
        if err.status != 409:
            raise
        core.replace_namespaced_secret(name, namespace, body)

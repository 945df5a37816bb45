"""Port forwarding from 127.0.0.1:P inside a pod's netns to 127.0.0.1:P on the host.

The API server and MLflow listen on host loopback only; this gives pods the same
addresses. A route may also listen on another address of the pod's (the real nodes
give in-cluster clients the `kubernetes` Service's address this way). Plain byte
copying, a thread per direction of each connection.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Sequence

from localcluster.agent import log, netns

Route = tuple[str, int, int]
"""(address to listen on inside the pod, its port, the host loopback port to reach)."""


class Forwarder:
    """The forwarded ports of one pod."""

    def __init__(
        self,
        ns_path: str,
        ports: Sequence[int | Route],
        who: str,
        allowed: Callable[[], bool],
    ) -> None:
        """`ports`: host ports forwarded from the same port on the pod's 127.0.0.1, or
        routes. `allowed()` false (the node is offline) refuses new connections."""
        self._ns_path = ns_path
        self._routes = [p if isinstance(p, tuple) else ("127.0.0.1", p, p) for p in ports]
        self._who = who
        self._allowed = allowed
        self._listeners: list[socket.socket] = []
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def start(self) -> None:
        """Listen on every route inside the pod's netns (raises OSError if one cannot bind)."""
        for host, listen_port, port in self._routes:
            sock = netns.listen_in(self._ns_path, host, listen_port)
            sock.settimeout(0.5)  # so the accept loop notices stop()
            self._listeners.append(sock)
            threading.Thread(
                target=self._accept_loop, args=(sock, port), name=f"fwd-{port}", daemon=True
            ).start()

    def stop(self) -> None:
        """Close the listeners and every open connection."""
        self._stopped.set()
        for sock in self._listeners:
            with contextlib.suppress(OSError):
                sock.close()
        self._listeners.clear()
        self.drop_connections()

    def drop_connections(self) -> None:
        """Cut every open connection (the node's network went down)."""
        with self._lock:
            conns = list(self._conns)
            self._conns.clear()
        for c in conns:
            _close(c)

    def _accept_loop(self, listener: socket.socket, port: int) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed by stop()
            if not self._allowed():
                _close(client)
                continue
            threading.Thread(
                target=self._connect, args=(client, port), name=f"fwd-{port}-conn", daemon=True
            ).start()

    def _connect(self, client: socket.socket, port: int) -> None:
        client.settimeout(None)
        try:
            upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
            upstream.settimeout(None)
        except OSError as e:
            log.warn(self._who, f"forward to 127.0.0.1:{port} failed: {e}")
            _close(client)
            return
        with self._lock:
            if self._stopped.is_set():
                _close(client)
                _close(upstream)
                return
            self._conns.update((client, upstream))
        done = threading.Event()
        threading.Thread(
            target=self._pump, args=(upstream, client, done), name="fwd-pump", daemon=True
        ).start()
        self._pump(client, upstream, done)

    def _pump(self, src: socket.socket, dst: socket.socket, done: threading.Event) -> None:
        """Copy src -> dst; on EOF half-close dst; the second direction to finish closes both."""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
        except OSError:
            # One side is gone: tear down both so the other pump ends too.
            _close(src)
            _close(dst)
        if done.is_set():
            _close(src)
            _close(dst)
            with self._lock:
                self._conns.discard(src)
                self._conns.discard(dst)
        else:
            done.set()


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()

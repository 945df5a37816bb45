"""Sockets inside a pod's network namespace, made from a short-lived thread.

setns(CLONE_NEWNET) only moves the calling thread, and a socket belongs to the
namespace it was created in for its whole life. So a throwaway thread enters the
pod's namespace, creates the socket, and goes back: every other thread of the
agent stays in the root namespace.
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)
_root_fd: int | None = None


def init_root() -> None:
    """Remember the root network namespace; call once from the main thread at start."""
    global _root_fd
    if _root_fd is None:
        _root_fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def call_in(ns_path: str, fn: Callable[[], T]) -> T:
    """Run `fn` in a fresh thread that is inside the namespace pinned at `ns_path`."""
    init_root()
    assert _root_fd is not None
    root_fd = _root_fd
    result: list[T] = []
    failure: list[BaseException] = []

    def body() -> None:
        try:
            fd = os.open(ns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(fd)
            finally:
                os.close(fd)
            try:
                result.append(fn())
            finally:
                # The thread ends right after, but never leave it anywhere unexpected.
                _setns(root_fd)
        except BaseException as e:
            failure.append(e)

    t = threading.Thread(target=body, name="netns-call", daemon=True)
    t.start()
    t.join()
    if failure:
        raise failure[0]
    return result[0]


def socket_in(ns_path: str) -> socket.socket:
    """A TCP socket living in the namespace at `ns_path` (connect it from anywhere)."""
    return call_in(ns_path, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))


def listen_in(ns_path: str, host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port inside the namespace at `ns_path`."""

    def make() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
            s.listen(64)
        except OSError:
            s.close()
            raise
        return s

    return call_in(ns_path, make)

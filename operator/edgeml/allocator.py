"""Giving freed memory back to the system: glibc's `malloc_trim`, on a timer.

The operator's threads (kopf's executor, the reconcile lanes, the API client's pool)
parse and drop many large JSON bodies; glibc keeps the freed pages of each of its
arenas resident, and Python's own heap is a fraction of the process's RSS at rest
(docs/benchmarks.md, operator load). `malloc_trim(0)` returns the free pages of every
arena to the kernel. It takes the arenas' locks while it walks them (milliseconds at a
few hundred MB), so it runs from one daemon thread, once every `every_seconds`.

Not glibc (musl, macOS): nothing to do, and `start_trimming` says so by returning None.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
from collections.abc import Callable

log = logging.getLogger("edgeml.allocator")

DEFAULT_TRIM_SECONDS = 60.0


def malloc_trim() -> Callable[[], int] | None:
    """glibc's `malloc_trim(0)` as a callable (1 if memory was released), or None."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: int(trim(0))


def start_trimming(
    every_seconds: float, stop: threading.Event | None = None
) -> threading.Thread | None:
    """Trim every `every_seconds` in a daemon thread until `stop` is set; None when
    there is no malloc_trim here or `every_seconds` is not positive."""
    trim = malloc_trim()
    if trim is None or every_seconds <= 0:
        return None
    stopped = stop or threading.Event()

    def loop() -> None:
        while not stopped.wait(every_seconds):
            try:
                trim()
            except Exception:  # never let the trimmer take anything down
                log.exception("malloc_trim failed; no more trimming")
                return

    thread = threading.Thread(target=loop, name="edgeml-malloc-trim", daemon=True)
    thread.start()
    return thread

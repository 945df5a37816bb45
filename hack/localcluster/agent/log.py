"""One line per event on stdout: `<iso time> <level> <subject> message`."""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime

_lock = threading.Lock()


def subject(node: str, namespace: str = "", pod: str = "") -> str:
    """The subject of a log line: `node` alone, or `node/ns/pod` for a pod."""
    return f"{node}/{namespace}/{pod}" if pod else node


def emit(level: str, who: str, message: str) -> None:
    """Write one log line; lines from different threads never interleave."""
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    # One event, one line: embedded newlines (multi-line commands, tracebacks) are escaped.
    flat = message.replace("\r", "\\r").replace("\n", "\\n")
    line = f"{stamp} {level} {who} {flat}\n"
    with _lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def info(who: str, message: str) -> None:
    """Log an ordinary event."""
    emit("INFO", who, message)


def warn(who: str, message: str) -> None:
    """Log something that went wrong but is retried or tolerated."""
    emit("WARN", who, message)


def error(who: str, message: str) -> None:
    """Log a failure that needs attention."""
    emit("ERROR", who, message)

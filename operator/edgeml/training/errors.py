"""The one error type of the training program: a CamelCase reason and a one-line message.

The operator reads the pod's termination message (`<Reason>: <message>`) and exit code:
2 for a problem the user must fix, 3 for one that may pass on a retry (the Job's
backoffLimit retries it).
"""

from __future__ import annotations

EXIT_SUCCEEDED = 0
EXIT_UNEXPECTED = 1
EXIT_USER_ERROR = 2
EXIT_TRANSIENT = 3


class TrainingError(Exception):
    """A training failure the operator can report as a reason and a message."""

    def __init__(self, reason: str, message: str, *, transient: bool = False) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.transient = transient

    @property
    def exit_code(self) -> int:
        """3 when a retry may succeed (an outage), 2 when the user must change something."""
        return EXIT_TRANSIENT if self.transient else EXIT_USER_ERROR

    def line(self) -> str:
        """The termination message: `<Reason>: <message>` on one line."""
        return one_line(f"{self.reason}: {self.message}")


def one_line(text: str, limit: int = 4000) -> str:
    """Text collapsed onto one line and cut to `limit` bytes of UTF-8."""
    flat = " ".join(text.split())
    encoded = flat.encode()
    if len(encoded) <= limit:
        return flat
    return encoded[: limit - 3].decode(errors="ignore") + "..."

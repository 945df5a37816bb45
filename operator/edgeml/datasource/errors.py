"""The one error type of data access: a CamelCase reason, a message, and whether a retry
may help."""

from __future__ import annotations


class DataSourceError(Exception):
    """Data that cannot be read or probed, said so a person can act on it."""

    def __init__(self, reason: str, message: str, *, transient: bool = False) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.transient = transient

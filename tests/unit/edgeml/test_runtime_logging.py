"""kopf's per-handler success lines are dropped; everything else it logs is kept."""

from __future__ import annotations

import logging

import pytest

from edgeml.runtime import QuietSuccess


def _record(message: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("kopf.objects", level, __file__, 1, message, None, None)


@pytest.mark.parametrize(
    "message",
    [
        "Handler 'on_inference_pod' succeeded.",
        "Handler 'edgemodels-event' succeeded.",
        "Timer 'trainingruns-resync' succeeded.",
    ],
)
def test_success_lines_are_dropped(message: str) -> None:
    assert not QuietSuccess().filter(_record(message))


@pytest.mark.parametrize(
    "message",
    [
        "Handler 'on_node' failed with an exception and will try again in 60 seconds: boom",
        "EdgeDeployment deleted",
        "Handler 'x' succeeded. And then something else happened.",
        "reconciled: phase Healthy",
    ],
)
def test_everything_else_is_kept(message: str) -> None:
    assert QuietSuccess().filter(_record(message))

"""Ground truth for earlier predictions: a bounded memory of request id → prediction.

The memory holds the most recent `capacity` predictions (oldest forgotten first), so a
busy node's memory stays flat; feedback for a forgotten or unknown id is refused. Each
prediction takes feedback once.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from edgeml.serving.protocol import RequestError


@dataclass(frozen=True)
class Judgement:
    """How one labelled prediction fared: correct (classification) or its absolute error."""

    rows: int
    correct: int
    absolute_errors: tuple[float, ...]


class PredictionMemory:
    """The recent predictions that can still get feedback."""

    def __init__(self, capacity: int, classification: bool) -> None:
        self.capacity = capacity
        self.classification = classification
        self._items: OrderedDict[str, list[Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def remember(self, request_id: str, predictions: list[Any]) -> None:
        """Keep a request's predictions (one per row), forgetting the oldest if full."""
        items = self._items
        items[request_id] = predictions
        if len(items) > self.capacity:
            items.popitem(last=False)

    def judge(self, request_id: Any, label: Any) -> Judgement:
        """Score feedback for one request; 404 if the id is unknown, 400 if malformed."""
        if not isinstance(request_id, str):
            raise RequestError(400, "feedback needs 'id', the id of an earlier request")
        predictions = self._items.get(request_id)
        if predictions is None:
            raise RequestError(
                404, f"no recent prediction has id '{request_id}' (unknown, or already labelled)"
            )
        labels = label if isinstance(label, list) else [label]
        if len(labels) != len(predictions):
            raise RequestError(
                400,
                f"request '{request_id}' made {len(predictions)} prediction(s) but the "
                f"feedback has {len(labels)} label(s)",
            )
        if self.classification:
            correct = sum(str(p) == _text(t) for p, t in zip(predictions, labels, strict=True))
            judgement = Judgement(len(labels), correct, ())
        else:
            try:
                errors = tuple(
                    abs(float(p) - float(t)) for p, t in zip(predictions, labels, strict=True)
                )
            except (TypeError, ValueError):
                raise RequestError(400, "regression feedback labels must be numbers") from None
            judgement = Judgement(len(labels), 0, errors)
        del self._items[request_id]
        return judgement


def _text(label: Any) -> str:
    # A label sent as 1 or "1" or 1.0 means class "1", as the baseline writes classes.
    if isinstance(label, float) and label.is_integer():
        return str(int(label))
    if isinstance(label, bool) or label is None or isinstance(label, dict | list):
        raise RequestError(400, f"a label must be a string or a number, not {label!r}")
    return str(label)

"""Ground truth for earlier predictions: a bounded memory of request id → prediction.

The memory holds the most recent `capacity` predictions (oldest forgotten first), so a
busy node's memory stays flat; feedback for a forgotten or unknown id is refused. Each
prediction takes feedback once.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from edgeml.serving.protocol import RequestError


@dataclass(frozen=True)
class Judgement:
    """How the labelled predictions of one request fared.

    Classification: (true label, predicted label) `pairs`, both as text, the way they
    are compared. Regression: the absolute and squared error of each prediction.
    """

    rows: int
    pairs: tuple[tuple[str, str], ...] = ()
    absolute_errors: tuple[float, ...] = ()
    squared_errors: tuple[float, ...] = ()

    @property
    def correct(self) -> int:
        """Labels equal to their prediction (classification)."""
        return sum(true == predicted for true, predicted in self.pairs)


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
            pairs = tuple((_text(t), str(p)) for p, t in zip(predictions, labels, strict=True))
            judgement = Judgement(len(labels), pairs=pairs)
        else:
            try:
                errors = [float(p) - float(t) for p, t in zip(predictions, labels, strict=True)]
            except (TypeError, ValueError):
                raise RequestError(400, "regression feedback labels must be numbers") from None
            if not all(math.isfinite(e * e) for e in errors):
                # One NaN or inf would spoil the error sums, which are counters, for good.
                raise RequestError(400, "regression feedback labels must be finite numbers")
            judgement = Judgement(
                len(labels),
                absolute_errors=tuple(abs(e) for e in errors),
                squared_errors=tuple(e * e for e in errors),
            )
        del self._items[request_id]
        return judgement


def _text(label: Any) -> str:
    # A label sent as 1 or "1" or 1.0 means class "1", as the baseline writes classes.
    if isinstance(label, float) and label.is_integer():
        return str(int(label))
    if isinstance(label, bool) or label is None or isinstance(label, dict | list):
        raise RequestError(400, f"a label must be a string or a number, not {label!r}")
    return str(label)

"""Judging feedback: (true, predicted) pairs as text for classifiers, errors for regressors."""

from __future__ import annotations

from typing import Any

import pytest

from edgeml.serving.feedback import Judgement, PredictionMemory
from edgeml.serving.protocol import RequestError


def test_classification_feedback_pairs_true_and_predicted_labels_as_text() -> None:
    memory = PredictionMemory(10, classification=True)
    memory.remember("a", ["1", "0", "1"])
    judgement = memory.judge("a", [1, "0", 0.0])  # 1 and 1.0 both mean class "1"
    assert judgement.pairs == (("1", "1"), ("0", "0"), ("0", "1"))
    assert (judgement.rows, judgement.correct) == (3, 2)
    assert judgement.absolute_errors == judgement.squared_errors == ()


def test_regression_feedback_has_absolute_and_squared_errors() -> None:
    memory = PredictionMemory(10, classification=False)
    memory.remember("a", [2.0, -1.0])
    judgement = memory.judge("a", [0.5, 1.0])
    assert judgement.absolute_errors == (1.5, 2.0)
    assert judgement.squared_errors == (2.25, 4.0)
    assert (judgement.rows, judgement.correct, judgement.pairs) == (2, 0, ())


@pytest.mark.parametrize("label", ["nan", "inf", 1e200])
def test_regression_feedback_that_would_spoil_the_sums_is_refused(label: Any) -> None:
    memory = PredictionMemory(10, classification=False)
    memory.remember("a", [2.0])
    with pytest.raises(RequestError, match="finite numbers") as caught:
        memory.judge("a", label)
    assert caught.value.status == 400
    assert len(memory) == 1  # not consumed: a corrected label can still come


def test_a_judgement_counts_correct_pairs() -> None:
    assert Judgement(2, pairs=(("a", "a"), ("a", "b"))).correct == 1

"""Setting a condition: the transition time moves only when the status does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeml.api.common import Condition, ConditionStatus
from edgeml.conditions import find_condition, set_condition

# No deadline: these run on shared, busy machines; 50 examples keep the suite quick.
PROPERTY = settings(max_examples=50, deadline=None)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(minutes=1)


def cond(
    type_: str = "Ready",
    status: ConditionStatus = "False",
    reason: str = "Queued",
    message: str = "m",
    at: datetime = T0,
    generation: int | None = 1,
) -> Condition:
    return Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=at,
        observed_generation=generation,
    )


@pytest.mark.parametrize(
    ("old_status", "old_reason", "old_message", "status", "reason", "message", "moved"),
    [
        ("False", "Queued", "m", "False", "Queued", "m", False),
        ("False", "Queued", "m", "False", "Queued", "another message", False),
        ("False", "Queued", "m", "False", "ModelNotFound", "m", False),
        ("False", "Queued", "m", "False", "ModelNotFound", "another", False),
        ("False", "Queued", "m", "True", "Queued", "m", True),
        ("False", "Queued", "m", "Unknown", "Queued", "m", True),
        ("True", "Ready", "m", "False", "Broken", "x", True),
        ("Unknown", "NotEvaluated", "m", "True", "Drift", "x", True),
    ],
)
def test_transition_time_moves_only_on_a_change_of_status(
    old_status: ConditionStatus,
    old_reason: str,
    old_message: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    moved: bool,
) -> None:
    old = [cond(status=old_status, reason=old_reason, message=old_message)]
    (new,) = set_condition(old, "Ready", status, reason, message, now=T1, generation=2)
    assert new.last_transition_time == (T1 if moved else T0)
    assert (new.status, new.reason, new.message) == (status, reason, message)
    assert new.observed_generation == 2


def test_a_new_condition_transitions_now() -> None:
    (new,) = set_condition([], "Ready", "True", "R", "m", now=T1, generation=5)
    assert new == cond(status="True", reason="R", at=T1, generation=5)


@pytest.mark.parametrize("generation", [None, 0, 7])
def test_observed_generation_is_the_one_given(generation: int | None) -> None:
    (new,) = set_condition([cond()], "Ready", "False", "Queued", "m", now=T1, generation=generation)
    assert new.observed_generation == generation


def test_conditions_are_sorted_by_type_and_others_kept() -> None:
    degraded = cond("Degraded", "False", "AsExpected")
    progressing = cond("Progressing", "True", "Rolling")
    result = set_condition(
        [progressing, degraded], "Available", "True", "R", "m", now=T1, generation=1
    )
    assert [c.type for c in result] == ["Available", "Degraded", "Progressing"]
    assert result[1] is degraded
    assert result[2] is progressing


def test_setting_a_type_replaces_every_copy_of_it() -> None:
    messy = [cond(reason="A"), cond("Degraded"), cond(reason="B")]
    result = set_condition(messy, "Ready", "False", "C", "m", now=T1, generation=1)
    assert [(c.type, c.reason) for c in result] == [("Degraded", "Queued"), ("Ready", "C")]


def test_the_input_list_is_not_changed() -> None:
    old = [cond()]
    set_condition(old, "Ready", "True", "R", "m", now=T1, generation=2)
    set_condition(old, "Degraded", "True", "R", "m", now=T1, generation=2)
    assert old == [cond()]


@pytest.mark.parametrize(("type_", "found"), [("Ready", 0), ("Degraded", 1), ("Drifted", None)])
def test_find_condition(type_: str, found: int | None) -> None:
    conditions = [cond("Ready"), cond("Degraded")]
    assert find_condition(conditions, type_) == (None if found is None else conditions[found])


# --- properties --------------------------------------------------------------------------------

TYPES = st.sampled_from(["Ready", "Progressing", "Degraded", "Drifted", "Succeeded"])
STATUSES = st.sampled_from(["True", "False", "Unknown"])
WORDS = st.text(alphabet="abAB -", max_size=8)
TIMES = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)
CONDITIONS = st.lists(
    st.builds(
        Condition,
        type=TYPES,
        status=STATUSES,
        reason=WORDS,
        message=WORDS,
        last_transition_time=TIMES,
        observed_generation=st.none() | st.integers(0, 100),
    ),
    unique_by=lambda c: c.type,
)
SETTINGS = st.tuples(TYPES, STATUSES, WORDS, WORDS, st.none() | st.integers(0, 100))


@PROPERTY
@given(CONDITIONS, SETTINGS, TIMES, TIMES)
def test_setting_twice_is_setting_once(
    conditions: list[Condition],
    setting: tuple[str, ConditionStatus, str, str, int | None],
    now: datetime,
    later: datetime,
) -> None:
    type_, status, reason, message, generation = setting
    once = set_condition(conditions, type_, status, reason, message, now=now, generation=generation)
    twice = set_condition(once, type_, status, reason, message, now=later, generation=generation)
    assert twice == once


@PROPERTY
@given(CONDITIONS, SETTINGS, TIMES)
def test_the_result_is_sorted_unique_and_holds_the_setting(
    conditions: list[Condition],
    setting: tuple[str, ConditionStatus, str, str, int | None],
    now: datetime,
) -> None:
    type_, status, reason, message, generation = setting
    result = set_condition(
        conditions, type_, status, reason, message, now=now, generation=generation
    )
    types = [c.type for c in result]
    assert types == sorted(set(types))
    assert set(types) == {c.type for c in conditions} | {type_}
    new = find_condition(result, type_)
    assert new is not None
    assert (new.status, new.reason, new.message, new.observed_generation) == (
        status,
        reason,
        message,
        generation,
    )
    old = find_condition(conditions, type_)
    expected_time = old.last_transition_time if old and old.status == status else now
    assert new.last_transition_time == expected_time
    for other in result:
        if other.type != type_:
            assert other == find_condition(conditions, other.type)

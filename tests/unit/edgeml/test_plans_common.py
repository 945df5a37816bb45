"""What every plan shares: applying wanted conditions, and one Event per transition."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeml.api.common import Condition, ConditionStatus, StatusBase
from edgeml.api.events import Event
from edgeml.plans.common import (
    INVALID_SPEC,
    READY,
    ConditionSpec,
    Plan,
    apply_conditions,
    transition_events,
)

# No deadline: these run on shared, busy machines; 50 examples keep the suite quick.
PROPERTY = settings(max_examples=50, deadline=None)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(minutes=1)

C = tuple[str, ConditionStatus, str, str]  # type, status, reason, message


def status_of(*conditions: C) -> StatusBase:
    return StatusBase(
        conditions=[
            Condition(type=t, status=s, reason=r, message=m, last_transition_time=T0)
            for t, s, r, m in conditions
        ]
    )


def test_constants() -> None:
    assert (READY, INVALID_SPEC) == ("Ready", "InvalidSpec")


def test_a_plan_has_no_objects_or_events_unless_given() -> None:
    plan = Plan(status=StatusBase())
    assert (plan.objects, plan.events) == ([], [])


def test_events_and_plans_are_frozen() -> None:
    with pytest.raises(FrozenInstanceError):
        Event("Normal", "R", "m").reason = "S"  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        Plan(status=StatusBase()).status = StatusBase()  # type: ignore[misc]


# --- apply_conditions ----------------------------------------------------------------------


def test_apply_conditions_sets_each_wanted_one_with_the_generation() -> None:
    wanted = [
        ConditionSpec("Ready", "False", "Queued", "q"),
        ConditionSpec("Succeeded", "Unknown", "Queued", "q"),
    ]
    result = apply_conditions([], wanted, now=T1, generation=4)
    assert [(c.type, c.status, c.reason, c.message) for c in result] == [
        ("Ready", "False", "Queued", "q"),
        ("Succeeded", "Unknown", "Queued", "q"),
    ]
    assert {(c.last_transition_time, c.observed_generation) for c in result} == {(T1, 4)}


def test_apply_conditions_keeps_transition_times_of_unchanged_statuses_and_others() -> None:
    old = status_of(
        ("Ready", "False", "ModelNotFound", "x"),
        ("Succeeded", "Unknown", "ModelNotFound", "x"),
        ("Other", "True", "Kept", "k"),
    ).conditions
    wanted = [
        ConditionSpec("Ready", "False", "Queued", "q"),
        ConditionSpec("Succeeded", "True", "Done", "d"),
    ]
    result = {c.type: c for c in apply_conditions(old, wanted, now=T1, generation=2)}
    assert result["Ready"].last_transition_time == T0
    assert result["Succeeded"].last_transition_time == T1
    assert result["Other"] == old[2]


def test_apply_conditions_with_nothing_wanted_returns_the_old_ones() -> None:
    old = status_of(("Ready", "True", "R", "m")).conditions
    assert apply_conditions(old, [], now=T1, generation=9) == old


# --- transition_events -----------------------------------------------------------------------

W, N = "Warning", "Normal"


@pytest.mark.parametrize(
    ("old", "new", "events"),
    [
        # first appearance of Ready: always news
        ([], [("Ready", "False", "InvalidSpec", "bad")], [(W, "InvalidSpec", "bad")]),
        ([], [("Ready", "False", "ModelNotFound", "x")], [(W, "ModelNotFound", "x")]),
        ([], [("Ready", "False", "DeploymentNotFound", "x")], [(W, "DeploymentNotFound", "x")]),
        ([], [("Ready", "False", "Queued", "q")], [(N, "Queued", "q")]),
        ([], [("Ready", "True", "PolicyAccepted", "p")], [(N, "PolicyAccepted", "p")]),
        ([], [("Ready", "False", "TrainingFailed", "f")], [(W, "TrainingFailed", "f")]),
        ([], [("Ready", "False", "RegistryUnavailable", "u")], [(W, "RegistryUnavailable", "u")]),
        # a first Unknown is never news
        ([], [("Ready", "Unknown", "Checking", "c")], []),
        ([], [("Succeeded", "Unknown", "Queued", "q")], []),
        ([], [("Drifted", "Unknown", "NotEvaluated", "n")], []),
        ([], [("Ready", "Unknown", "ModelNotFound", "x")], []),
        # a first non-Ready condition is news only if it is bad
        ([], [("Degraded", "False", "AsExpected", "ok")], []),
        ([], [("Progressing", "True", "TargetResolved", "t")], []),
        ([], [("Succeeded", "True", "Trained", "t")], []),
        ([], [("Drifted", "False", "NoDrift", "ok")], []),
        ([], [("Degraded", "True", "NodesFailing", "d")], [(W, "NodesFailing", "d")]),
        ([], [("Drifted", "True", "DataDrift", "d")], [(W, "DataDrift", "d")]),
        ([], [("Succeeded", "False", "JobFailed", "f")], [(W, "JobFailed", "f")]),
        ([], [("Succeeded", "False", "Deadline", "f")], [(W, "Deadline", "f")]),
        ([], [("Progressing", "False", "InvalidSpec", "bad")], [(W, "InvalidSpec", "bad")]),
        # unchanged status and reason: no event, whatever the message
        ([("Ready", "False", "Queued", "q")], [("Ready", "False", "Queued", "q")], []),
        ([("Ready", "False", "Queued", "q")], [("Ready", "False", "Queued", "other")], []),
        ([("Degraded", "True", "Bad", "b")], [("Degraded", "True", "Bad", "b")], []),
        # a change of status or reason is news, good or bad
        (
            [("Ready", "False", "Queued", "q")],
            [("Ready", "True", "Queued", "q")],
            [(N, "Queued", "q")],
        ),
        (
            [("Ready", "False", "ModelNotFound", "x")],
            [("Ready", "False", "Queued", "q")],
            [(N, "Queued", "q")],
        ),
        (
            [("Ready", "False", "Queued", "q")],
            [("Ready", "False", "InvalidSpec", "bad")],
            [(W, "InvalidSpec", "bad")],
        ),
        (
            [("Degraded", "True", "NodesFailing", "d")],
            [("Degraded", "False", "AsExpected", "ok")],
            [(N, "AsExpected", "ok")],
        ),
        (
            [("Drifted", "Unknown", "NotEvaluated", "n")],
            [("Drifted", "True", "DataDrift", "d")],
            [(W, "DataDrift", "d")],
        ),
        (
            [("Ready", "True", "Ok", "o")],
            [("Ready", "Unknown", "Lost", "l")],
            [(N, "Lost", "l")],
        ),
        # a removed condition is not an event
        ([("Degraded", "True", "Bad", "b")], [], []),
        # several conditions moving for one reason: one event
        (
            [],
            [
                ("Progressing", "False", "InvalidSpec", "bad"),
                ("Ready", "False", "InvalidSpec", "bad"),
            ],
            [(W, "InvalidSpec", "bad")],
        ),
        (
            [
                ("Progressing", "False", "ModelNotFound", "x"),
                ("Ready", "False", "ModelNotFound", "x"),
            ],
            [
                ("Progressing", "True", "TargetResolved", "t"),
                ("Ready", "False", "TargetResolved", "t"),
            ],
            [(N, "TargetResolved", "t")],
        ),
        # the same reason with different messages: one event each
        (
            [],
            [("Degraded", "True", "Bad", "one"), ("Ready", "False", "Bad", "two")],
            [(W, "Bad", "one"), (N, "Bad", "two")],
        ),
        # events follow the order of the new conditions
        (
            [("Degraded", "False", "AsExpected", "ok"), ("Ready", "True", "Ok", "o")],
            [("Degraded", "True", "NodesFailing", "d"), ("Ready", "False", "NotReady", "n")],
            [(W, "NodesFailing", "d"), (N, "NotReady", "n")],
        ),
    ],
)
def test_transition_events(old: list[C], new: list[C], events: list[tuple[str, str, str]]) -> None:
    assert transition_events(status_of(*old), status_of(*new)) == [Event(*e) for e in events]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "new",
    [
        [("Ready", "False", "Queued", "q")],
        [("Ready", "Unknown", "Queued", "q")],
        [("Degraded", "True", "Bad", "b")],
        [("Degraded", "False", "AsExpected", "ok")],
    ],
)
def test_no_old_status_is_the_same_as_no_old_conditions(new: list[C]) -> None:
    assert transition_events(None, status_of(*new)) == transition_events(
        StatusBase(), status_of(*new)
    )


# --- properties ------------------------------------------------------------------------------

CONDITIONS = st.lists(
    st.tuples(
        st.sampled_from(["Ready", "Progressing", "Degraded", "Drifted", "Succeeded", "Other"]),
        st.sampled_from(["True", "False", "Unknown"]),
        st.sampled_from(
            ["InvalidSpec", "ModelNotFound", "JobFailed", "Queued", "AsExpected", "Ok"]
        ),
        st.sampled_from(["a", "b"]),
    ),
    unique_by=lambda c: c[0],
).map(lambda cs: status_of(*cs))


@PROPERTY
@given(CONDITIONS)
def test_an_unchanged_status_posts_no_event(status: StatusBase) -> None:
    assert transition_events(status, status) == []
    assert transition_events(status, status.model_copy()) == []


@PROPERTY
@given(st.none() | CONDITIONS, CONDITIONS)
def test_events_are_unique_and_each_tells_a_new_conditions_reason(
    old: StatusBase | None, new: StatusBase
) -> None:
    events = transition_events(old, new)
    keys = [(e.reason, e.message) for e in events]
    assert len(keys) == len(set(keys))
    assert set(keys) <= {(c.reason, c.message) for c in new.conditions}
    assert len(events) <= len(new.conditions)
    for event in events:
        if event.reason == INVALID_SPEC or event.reason.endswith("NotFound"):
            assert event.type == "Warning"


@PROPERTY
@given(CONDITIONS, CONDITIONS)
def test_only_changed_conditions_post_events(old: StatusBase, new: StatusBase) -> None:
    changed = {
        (c.reason, c.message)
        for c in new.conditions
        if not any(
            (o.type, o.status, o.reason) == (c.type, c.status, c.reason) for o in old.conditions
        )
    }
    assert {(e.reason, e.message) for e in transition_events(old, new)} <= changed

"""The retraining governor: triggers, de-duplication, cooldown, limits, backoff, pause."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeml.api.driftpolicy import DriftPolicySpec, RetrainingStatus, TriggeredRun
from edgeml.api.notify import Episode
from edgeml.objects.training_run import POLICY_LABEL, TICK_ANNOTATION, TRIGGER_ID_LABEL
from edgeml.plans.retraining import (
    RESUME_ANNOTATION,
    DeploymentFacts,
    ModelFacts,
    PolicyFacts,
    RetrainPlan,
    RunFacts,
    VersionFacts,
    latest_tick,
    outcome_of,
    plan_retraining,
    rejections_in_a_row,
)
from support.objects import drift_policy

PROPERTY = settings(max_examples=60, deadline=None)
T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
EPISODE = Episode(fingerprint="ep-1", started=T0, message="zone site-c: inputs f0 2.1 (psi > 0.2)")
FOLLOWING = DeploymentFacts(name="edge", phase="Healthy", target=3, stable=3)


def spec_of(**fields: Any) -> DriftPolicySpec:
    return DriftPolicySpec.model_validate(drift_policy(**fields)["spec"])


def policy_of(
    spec: DriftPolicySpec,
    *,
    drifted: bool = False,
    episode: Episode | None = None,
    generation: int = 1,
    annotations: dict[str, str] | None = None,
    created: datetime = T0 - timedelta(days=1),
) -> PolicyFacts:
    return PolicyFacts(
        namespace="ml",
        name="vibration-drift",
        uid="uid-1",
        generation=generation,
        created=created,
        annotations=annotations or {},
        spec=spec,
        model="vibration",
        drifted=drifted,
        episode=episode,
    )


def _tick(meta: dict[str, Any]) -> datetime | None:
    """The schedule tick, as the controller reads it from the run's annotation."""
    text = (meta.get("annotations") or {}).get(TICK_ANNOTATION)
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


@dataclass
class Loop:
    """The world a policy's reconciles see: the cluster's TrainingRuns and the status."""

    spec: DriftPolicySpec
    runs: dict[str, RunFacts] = field(default_factory=dict)
    status: RetrainingStatus | None = None
    records: list[TriggeredRun] = field(default_factory=list)
    last_retrain: datetime | None = None
    model: ModelFacts = field(default_factory=lambda: ModelFacts(champion=3))
    deployment: DeploymentFacts = FOLLOWING
    created: list[RunFacts] = field(default_factory=list)
    """Every TrainingRun the API server accepted, in order."""

    def reconcile(self, now: datetime, *, write_status: bool = True, **policy: Any) -> RetrainPlan:
        plan = plan_retraining(
            policy_of(self.spec, **policy),
            self.status,
            self.records,
            self.last_retrain,
            list(self.runs.values()),
            self.model,
            self.deployment,
            now,
        )
        if plan.create is not None:
            meta = plan.create["metadata"]
            if meta["name"] not in self.runs:  # the API server refuses a second one
                run = RunFacts(
                    name=meta["name"],
                    trigger=plan.create["spec"]["trigger"],
                    trigger_id=meta["labels"][TRIGGER_ID_LABEL],
                    created=now,
                    phase="Pending",
                    tick=_tick(meta),
                )
                self.runs[run.name] = run
                self.created.append(run)
        if write_status:
            self.status, self.records, self.last_retrain = (
                plan.status,
                plan.records,
                plan.last_retrain,
            )
        return plan

    def finish(self, name: str, phase: str = "Succeeded", version: int | None = None) -> None:
        """A run ends; a succeeded one's version is promoted and rolled out."""
        run = self.runs[name]
        self.runs[name] = replace(run, phase=phase, version=version, completed=run.created)
        if phase == "Succeeded" and version is not None:
            self.model = ModelFacts(champion=version, versions={version: VersionFacts("Promoted")})
            self.deployment = replace(FOLLOWING, target=version, stable=version)


# --- drift ------------------------------------------------------------------------------


def test_drift_creates_one_run_per_episode_and_champion() -> None:
    loop = Loop(spec_of(action="RetrainAndDeploy", cooldown="1m"))
    plan = loop.reconcile(T0, drifted=True, episode=EPISODE)
    assert plan.create is not None
    manifest = plan.create
    assert manifest["spec"]["trigger"] == "Drift"
    assert manifest["spec"]["requireApproval"] is False
    assert manifest["spec"]["modelRef"] == {"name": "vibration"}
    assert "zone site-c" in manifest["spec"]["reason"]
    assert manifest["metadata"]["labels"][POLICY_LABEL] == "vibration-drift"
    assert manifest["metadata"]["name"].startswith("vibration-drift-drift-")
    assert len(manifest["metadata"]["name"]) <= 52
    assert plan.status.state == "Training"
    assert plan.condition is not None
    assert plan.condition.status == "True"
    assert [e.reason for e in plan.events] == ["RetrainTriggered"]
    # Again and again, in flight, finished, and long after the cooldown: same episode and
    # champion, no second run.
    for minutes in (1, 2):
        assert (
            loop.reconcile(T0 + timedelta(minutes=minutes), drifted=True, episode=EPISODE).create
            is None
        )
    (run,) = loop.created
    loop.finish(run.name, "Failed")
    assert loop.reconcile(T0 + timedelta(hours=5), drifted=True, episode=EPISODE).create is None
    assert len(loop.created) == 1


def test_a_new_champion_still_drifted_after_the_cooldown_retrains_again() -> None:
    loop = Loop(spec_of(action="RetrainAndDeploy", cooldown="30m"))
    loop.reconcile(T0, drifted=True, episode=EPISODE)
    loop.finish(loop.created[0].name, version=4)
    plan = loop.reconcile(T0 + timedelta(minutes=10), drifted=True, episode=EPISODE)
    assert plan.create is None
    assert plan.status.state == "Cooldown"
    assert plan.status.until == T0 + timedelta(minutes=30)
    assert loop.records[0].outcome == "RolledOut"
    later = loop.reconcile(T0 + timedelta(minutes=31), drifted=True, episode=EPISODE)
    assert later.create is not None
    assert len({r.trigger_id for r in loop.created}) == 2


def test_action_retrain_asks_for_approval_and_alert_never_retrains_on_drift() -> None:
    retrain = Loop(spec_of(action="Retrain")).reconcile(T0, drifted=True, episode=EPISODE)
    assert retrain.create is not None
    assert retrain.create["spec"]["requireApproval"] is True
    assert "wait for approval" in retrain.events[0].message
    alert = Loop(spec_of(action="Alert")).reconcile(T0, drifted=True, episode=EPISODE)
    assert alert.create is None
    assert alert.condition is None
    assert alert.status.state == "Disabled"


def test_no_retrain_without_an_open_episode() -> None:
    loop = Loop(spec_of(action="RetrainAndDeploy"))
    ended = EPISODE.model_copy(update={"ended": T0})
    assert loop.reconcile(T0, drifted=False, episode=None).create is None
    assert loop.reconcile(T0, drifted=True, episode=ended).create is None
    assert loop.status is not None
    assert loop.status.state == "Idle"


def test_a_lost_status_write_or_a_lagging_list_never_makes_a_second_run() -> None:
    loop = Loop(spec_of(action="RetrainAndDeploy", cooldown="1m"))
    # Killed after creating, before the status write: the next pass sees the run.
    loop.reconcile(T0, drifted=True, episode=EPISODE, write_status=False)
    assert loop.status is None
    loop.reconcile(T0 + timedelta(hours=2), drifted=True, episode=EPISODE)
    # The status was written but the list does not show the run yet: status remembers.
    lagging = Loop(spec_of(action="RetrainAndDeploy", cooldown="1m"))
    lagging.reconcile(T0, drifted=True, episode=EPISODE)
    lagging.runs.clear()
    again = lagging.reconcile(T0 + timedelta(hours=2), drifted=True, episode=EPISODE)
    assert again.create is None
    assert len(loop.created) == 1
    assert len(lagging.created) == 1


@PROPERTY
@given(
    st.lists(
        st.tuples(
            st.integers(1, 900),  # seconds to the next reconcile
            st.booleans(),  # drifted
            st.booleans(),  # the status write is lost
            st.sampled_from([None, "Succeeded", "Failed"]),  # the newest run ends so
        ),
        min_size=1,
        max_size=40,
    ),
    st.sampled_from(["1m", "5m", "1h"]),
)
def test_any_interleaving_gives_one_run_per_reason_and_keeps_the_cooldown(
    steps: list[tuple[int, bool, bool, str | None]], cooldown: str
) -> None:
    loop = Loop(spec_of(action="RetrainAndDeploy", cooldown=cooldown, schedule="*/5 * * * *"))
    now = T0
    version = 3
    for seconds, drifted, lost, ending in steps:
        now += timedelta(seconds=seconds)
        episode = EPISODE if drifted else None
        loop.reconcile(now, drifted=drifted, episode=episode, write_status=not lost)
        newest = loop.created[-1] if loop.created else None
        if ending and newest is not None and loop.runs[newest.name].phase == "Pending":
            version += 1
            loop.finish(newest.name, ending, version if ending == "Succeeded" else None)
    ids = [r.trigger_id for r in loop.created]
    assert len(ids) == len(set(ids)), "two runs for one reason"
    gap = timedelta(minutes={"1m": 1, "5m": 5, "1h": 60}[cooldown])
    for a, b in zip(loop.created, loop.created[1:], strict=False):
        # A lost status write forgets last_retrain, but the runs' own times keep the rule;
        # a scheduled run counts from its tick.
        assert b.created - (a.tick or a.created) >= gap
    assert len(loop.created) <= 4 * ((now - T0) // timedelta(days=1) + 1)  # maxPerDay 4


# --- schedule ---------------------------------------------------------------------------


def test_every_minute_for_five_minutes_with_a_two_minute_cooldown() -> None:
    loop = Loop(spec_of(schedule="* * * * *", cooldown="2m", action="RetrainAndDeploy"))
    skipped = []
    now = T0 + timedelta(seconds=1)
    end = T0 + timedelta(minutes=5, seconds=30)
    while now <= end:
        plan = loop.reconcile(now)
        skipped += [e for e in plan.events if e.reason == "ScheduledRetrainSkipped"]
        for run in loop.created:
            if loop.runs[run.name].phase == "Pending":
                loop.finish(run.name, version=len(loop.created) + 3)
        now += timedelta(seconds=10)
    # Ticks 10:00..10:05; a run at 10:00 (first reconcile after it), then every 2 minutes.
    assert [r.created.strftime("%H:%M") for r in loop.created] == ["10:00", "10:02", "10:04"]
    assert all(r.trigger == "Schedule" for r in loop.created)
    assert len(skipped) == 3  # 10:01, 10:03, 10:05, each said once
    assert all("cooldown" in e.message for e in skipped)


def test_a_new_policy_waits_for_the_first_tick_after_it_was_created() -> None:
    loop = Loop(spec_of(schedule="0 * * * *"))
    created = T0 + timedelta(minutes=30)
    assert loop.reconcile(T0 + timedelta(minutes=31), created=created).create is None
    assert loop.status is not None
    assert loop.status.next_tick == T0 + timedelta(hours=1)
    plan = loop.reconcile(T0 + timedelta(hours=1, seconds=3), created=created)
    assert plan.create is not None
    assert plan.create["spec"]["trigger"] == "Schedule"
    assert plan.create["spec"]["requireApproval"] is True  # action Alert: a person approves
    assert plan.requeue_at == T0 + timedelta(hours=2)


def test_after_an_outage_only_the_newest_missed_tick_is_caught_up_once() -> None:
    loop = Loop(spec_of(schedule="* * * * *", cooldown="10s"))
    loop.reconcile(T0 + timedelta(seconds=5))
    assert len(loop.created) == 1
    loop.finish(loop.created[0].name, version=4)
    # Down from 10:00:05 to 10:07:30: ticks 10:01..10:07 missed.
    back = T0 + timedelta(minutes=7, seconds=30)
    loop.reconcile(back)
    loop.reconcile(back + timedelta(seconds=10))
    assert [r.created for r in loop.created] == [T0 + timedelta(seconds=5), back]
    assert loop.records[0].trigger == "Schedule"
    assert loop.status is not None
    assert loop.status.last_tick == T0 + timedelta(minutes=7)


def test_a_tick_missed_beyond_the_starting_deadline_is_skipped_and_said() -> None:
    loop = Loop(spec_of(schedule="0 3 * * *", retraining={"startingDeadline": "30m"}))
    loop.status = RetrainingStatus(last_tick=T0 - timedelta(days=1, hours=7))
    plan = loop.reconcile(T0)  # 10:00, the 03:00 tick is 7 hours old
    assert plan.create is None
    assert [e.reason for e in plan.events] == ["ScheduledRetrainSkipped"]
    assert "startingDeadline 30m" in plan.status.message
    assert plan.status.last_tick == T0 - timedelta(hours=7)
    assert loop.reconcile(T0 + timedelta(minutes=1)).events == []  # said once


def test_a_reconcile_exactly_at_a_tick_sees_that_tick() -> None:
    # The policy's loop sleeps until next_tick and wakes on it, to the second.
    assert latest_tick("* * * * *", T0) == T0
    assert latest_tick("* * * * *", T0 + timedelta(microseconds=999_999)) == T0
    loop = Loop(spec_of(schedule="* * * * *", cooldown="10s"))
    for minute in range(3):
        loop.reconcile(T0 + timedelta(minutes=minute))
        for run in loop.created:
            if loop.runs[run.name].phase == "Pending":
                loop.finish(run.name, version=4 + minute)
    assert [r.created for r in loop.created] == [T0 + timedelta(minutes=m) for m in range(3)]


def test_the_latest_tick_handles_macros_and_steps() -> None:
    assert latest_tick("@hourly", T0 + timedelta(minutes=59)) == T0
    assert latest_tick("*/15 * * * *", T0 + timedelta(minutes=44)) == T0 + timedelta(minutes=30)
    assert latest_tick("0 0 * * 0", T0) == datetime(2025, 12, 28, tzinfo=UTC)


# --- the governor -------------------------------------------------------------------------


def _record(name: str, outcome: str, created: datetime, **more: Any) -> TriggeredRun:
    return TriggeredRun.model_validate(
        {"name": name, "trigger": "Drift", "triggerId": name, "created": created,
         "outcome": outcome, **more}
    )  # fmt: skip


def _governed(records: list[TriggeredRun], now: datetime, **spec: Any) -> RetrainPlan:
    runs = [
        RunFacts(
            r.name,
            "Drift",
            r.trigger_id,
            r.created or T0,
            "Failed" if r.outcome == "Failed" else "Succeeded",
            completed=r.finished,
        )
        for r in records
    ]  # fmt: skip
    # The model says what each record says, so the records keep their outcomes.
    versions = {i + 10: VersionFacts("Rejected" if r.outcome == "Rejected" else "Promoted")
                for i, r in enumerate(records)}  # fmt: skip
    runs = [replace(run, version=i + 10) for i, run in enumerate(runs)]
    return plan_retraining(
        policy_of(spec_of(action="RetrainAndDeploy", **spec), drifted=True, episode=EPISODE),
        None,
        records,
        None,
        runs,
        ModelFacts(champion=None, versions=versions),
        FOLLOWING,
        now,
    )


def test_the_daily_limit_says_when_it_ends() -> None:
    records = [_record(f"r{i}", "Promoted", T0 - timedelta(hours=20 - 4 * i)) for i in range(4)]
    plan = _governed(records, T0 + timedelta(hours=1), cooldown="1m")
    assert plan.status.state == "DailyLimit"
    assert plan.create is None
    assert plan.status.until == T0 - timedelta(hours=20) + timedelta(days=1)
    assert plan.condition is not None
    assert plan.condition.reason == "DailyLimit"
    more = _governed(records, T0 + timedelta(hours=1), cooldown="1m", retraining={"maxPerDay": 5})
    assert more.create is not None


def test_failed_runs_back_off_doubling() -> None:
    def failed(n: int) -> list[TriggeredRun]:
        return [
            _record(
                f"f{i}", "Failed", T0 - timedelta(minutes=i), finished=T0 - timedelta(minutes=i)
            )
            for i in range(n)
        ]

    one = _governed(failed(1), T0 + timedelta(minutes=5), cooldown="1m")
    assert (one.status.state, one.status.until) == ("Backoff", T0 + timedelta(minutes=10))
    three = _governed(failed(3), T0 + timedelta(minutes=30), cooldown="1m")
    assert (three.status.state, three.status.until) == ("Backoff", T0 + timedelta(minutes=40))
    assert _governed(failed(1), T0 + timedelta(minutes=11), cooldown="1m").create is not None


def test_three_rejections_in_a_row_pause_until_resumed_or_the_spec_changes() -> None:
    records = [
        _record(f"r{i}", "Rejected", T0 - timedelta(hours=3 - i), message="f1 0.6 vs champion 0.8")
        for i in range(3)
    ][::-1]
    plan = _governed(records, T0, cooldown="1m")
    assert plan.status.state == "Paused"
    assert plan.create is None
    assert plan.condition is not None
    assert plan.condition.reason == "RetrainingPaused"
    assert "last 3 retrained versions were rejected" in plan.condition.message
    assert "edgeml retrain <model> --resume" in plan.condition.message
    assert [e.reason for e in plan.events] == []  # the condition's transition announces it
    # Resumed by annotation: counting starts again, and a retrain may start.
    spec = spec_of(action="RetrainAndDeploy", cooldown="1m")
    resumed = plan_retraining(
        policy_of(spec, drifted=True, episode=EPISODE, annotations={RESUME_ANNOTATION: "tok"}),
        plan.status, plan.records, None, [], ModelFacts(), FOLLOWING, T0 + timedelta(minutes=1),
    )  # fmt: skip
    assert resumed.status.resumed == "tok"
    assert resumed.create is not None
    assert "RetrainingResumed" in [e.reason for e in resumed.events]
    changed = plan_retraining(
        policy_of(spec, drifted=True, episode=EPISODE, generation=2),
        plan.status, plan.records, None, [], ModelFacts(), FOLLOWING, T0 + timedelta(minutes=1),
    )  # fmt: skip
    assert changed.status.rejections_in_a_row == 0
    assert changed.create is not None


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([], 0),
        (["Rejected"], 1),
        (["Rejected", "RolledBack", "Rejected"], 3),
        (["Rejected", "Failed", "Rejected"], 2),
        (["Rejected", "RolledOut", "Rejected"], 1),
        (["Training", "Rejected", "Rejected"], 2),
        (["Promoted", "Rejected"], 0),
    ],
)
def test_rejections_in_a_row(outcomes: list[str], expected: int) -> None:
    records = [_record(f"r{i}", o, T0 - timedelta(hours=i)) for i, o in enumerate(outcomes)]
    assert rejections_in_a_row(records, None) == expected
    # Counting since a resume: only the newest record is recent enough here.
    newest_counts = outcomes[:1] in (["Rejected"], ["RolledBack"])
    assert rejections_in_a_row(records, T0 - timedelta(minutes=30)) == int(newest_counts)


def test_one_run_in_flight_blocks_the_next() -> None:
    for outcome in ("Training", "Evaluating", "RollingOut"):
        records = [_record("busy", outcome, T0 - timedelta(hours=5))]
        runs = [RunFacts("busy", "Drift", "busy", T0 - timedelta(hours=5), phase="Running")]
        plan = plan_retraining(
            policy_of(spec_of(action="RetrainAndDeploy", cooldown="1m"), drifted=True,
                      episode=EPISODE),
            None, records, None, runs, ModelFacts(champion=3), FOLLOWING, T0,
        )  # fmt: skip
        assert plan.create is None, outcome
        assert plan.status.state == "Training", outcome


def test_a_pinned_deployment_is_reported_never_edited() -> None:
    pinned = DeploymentFacts(name="edge", pinned=3, phase="Healthy", target=3, stable=3)
    loop = Loop(spec_of(action="RetrainAndDeploy", cooldown="1m"), deployment=pinned)
    plan = loop.reconcile(T0, drifted=True, episode=EPISODE)
    assert plan.create is not None
    assert "pins version 3" in plan.status.message
    loop.finish(loop.created[0].name, version=4)
    loop.deployment = pinned
    after = loop.reconcile(T0 + timedelta(minutes=5))
    assert loop.records[0].outcome == "Promoted"
    assert "pins version 3, so it is not rolled out there" in loop.records[0].message
    assert after.condition is not None
    assert after.condition.reason == "DeploymentPinned"


# --- outcomes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("run", "model", "deployment", "expected"),
    [
        (dict(phase="Running"), ModelFacts(), FOLLOWING, "Training"),
        (dict(phase="Failed", failure="DatasetNotFound: x"), ModelFacts(), FOLLOWING, "Failed"),
        (dict(phase="Succeeded"), ModelFacts(), FOLLOWING, "Evaluating"),
        (dict(phase="Succeeded", version=4), ModelFacts(champion=3), FOLLOWING, "Evaluating"),
        (dict(phase="Succeeded", version=4),
         ModelFacts(champion=3, versions={4: VersionFacts("Rejected", "f1 0.5 vs min 0.8")}),
         FOLLOWING, "Rejected"),
        (dict(phase="Succeeded", version=4),
         ModelFacts(champion=3, versions={4: VersionFacts(awaiting_approval=True)}),
         FOLLOWING, "AwaitingApproval"),
        (dict(phase="Succeeded", version=4), ModelFacts(champion=4), FOLLOWING, "RollingOut"),
        (dict(phase="Succeeded", version=4), ModelFacts(champion=4),
         replace(FOLLOWING, target=4, stable=4), "RolledOut"),
        (dict(phase="Succeeded", version=4), ModelFacts(champion=4),
         replace(FOLLOWING, rolled_back=(4,), reason="error-rate 0.2 > 0.01"), "RolledBack"),
        (dict(phase="Succeeded", version=4),
         ModelFacts(champion=5, versions={4: VersionFacts("Promoted")}), FOLLOWING, "Promoted"),
    ],
)  # fmt: skip
def test_outcome_of_a_run(
    run: dict[str, Any], model: ModelFacts, deployment: DeploymentFacts, expected: str
) -> None:
    facts = RunFacts("r", "Drift", "id", T0, **run)
    outcome, message = outcome_of(facts, model, deployment)
    assert outcome == expected
    assert message


def test_final_outcomes_are_kept_and_announced_once() -> None:
    loop = Loop(spec_of(action="RetrainAndDeploy", cooldown="1m"))
    loop.reconcile(T0, drifted=True, episode=EPISODE)
    name = loop.created[0].name
    loop.finish(name, version=4)
    loop.deployment = replace(FOLLOWING, target=4, stable=3, phase="Progressing")
    assert [e.reason for e in loop.reconcile(T0 + timedelta(seconds=30)).events] == []
    loop.deployment = replace(FOLLOWING, target=4, stable=4)
    assert [e.reason for e in loop.reconcile(T0 + timedelta(seconds=60)).events] == [
        "RetrainRolledOut"
    ]
    # A later champion does not rewrite history, and nothing is announced twice.
    loop.model = ModelFacts(champion=5)
    loop.deployment = replace(FOLLOWING, target=5, stable=5)
    assert loop.reconcile(T0 + timedelta(seconds=90)).events == []
    assert loop.records[0].outcome == "RolledOut"


# --- found in review ------------------------------------------------------------------------


def test_a_version_left_undecided_by_a_newer_one_is_superseded_and_blocks_nothing() -> None:
    # Action Retrain: v5 waits for approval; a newer version (v6, from elsewhere) makes
    # promotion decide v6 instead, and v5 is never decided.
    loop = Loop(spec_of(action="Retrain", cooldown="1m"))
    loop.reconcile(T0, drifted=True, episode=EPISODE)
    name = loop.created[0].name
    loop.runs[name] = replace(loop.runs[name], phase="Succeeded", version=5, completed=T0)
    loop.model = ModelFacts(
        champion=3, versions={5: VersionFacts(awaiting_approval=True)}, latest=5
    )
    loop.reconcile(T0 + timedelta(minutes=1), drifted=True, episode=EPISODE)
    assert loop.records[0].outcome == "AwaitingApproval"
    loop.model = ModelFacts(champion=3, versions={5: VersionFacts(), 6: VersionFacts()}, latest=6)
    plan = loop.reconcile(T0 + timedelta(minutes=2))
    assert loop.records[0].outcome == "Superseded"  # never back to Evaluating
    assert plan.status.state != "Training"
    fresh = Loop(spec_of(action="Retrain", cooldown="1m"))
    fresh.reconcile(T0, drifted=True, episode=EPISODE)
    run = fresh.created[0].name
    fresh.runs[run] = replace(fresh.runs[run], phase="Succeeded", version=5, completed=T0)
    fresh.model = ModelFacts(champion=3, versions={5: VersionFacts(), 6: VersionFacts()}, latest=6)
    later = fresh.reconcile(T0 + timedelta(minutes=2))
    assert fresh.records[0].outcome == "Superseded"
    assert "edgeml promote <model> --version 5" in fresh.records[0].message
    assert later.status.state == "Idle"


def test_the_daily_limit_counts_every_run_not_only_the_ten_listed() -> None:
    spec = spec_of(action="RetrainAndDeploy", cooldown="10s", retraining={"maxPerDay": 20})
    runs = [
        RunFacts(f"r{i:02d}", "Drift", f"id{i}", T0 - timedelta(minutes=30 * i), "Succeeded",
                 version=10 + i, completed=T0 - timedelta(minutes=30 * i))
        for i in range(20)
    ]  # fmt: skip
    # Each was champion once, and has been succeeded: none in flight, none rejected.
    model = ModelFacts(champion=3, versions={10 + i: VersionFacts("Promoted") for i in range(20)})
    plan = plan_retraining(
        policy_of(spec, drifted=True, episode=EPISODE),
        None, [], None, runs, model, FOLLOWING, T0 + timedelta(minutes=1),
    )  # fmt: skip
    assert len(plan.records) == 10  # status keeps ten
    assert plan.status.state == "DailyLimit"
    assert plan.create is None


def test_runs_beyond_the_listed_ten_are_not_announced_again_and_again() -> None:
    runs = [
        RunFacts(f"r{i:02d}", "Drift", f"id{i}", T0 - timedelta(hours=i + 1), "Failed",
                 completed=T0 - timedelta(hours=i + 1), failure="x")
        for i in range(15)
    ]  # fmt: skip
    spec = spec_of(action="RetrainAndDeploy", cooldown="10s")
    first = plan_retraining(policy_of(spec), None, [], None, runs, ModelFacts(), FOLLOWING, T0)
    again = plan_retraining(
        policy_of(spec), first.status, first.records, None, runs, ModelFacts(), FOLLOWING, T0
    )
    assert len([e for e in first.events if e.reason == "RetrainFailed"]) == 10
    assert again.events == []


def test_a_schedule_as_long_as_its_cooldown_runs_at_every_tick() -> None:
    # Every six hours with the default 6h cooldown; the operator gets to each tick a few
    # seconds late, as it does.
    loop = Loop(spec_of(schedule="0 */6 * * *", cooldown="6h"))
    noon = T0.replace(hour=12)
    for tick in range(4):
        loop.reconcile(noon + timedelta(hours=6 * tick, seconds=5 - tick))  # less late each time
        for run in loop.created:
            if loop.runs[run.name].phase == "Pending":
                loop.finish(run.name, version=4 + tick)
    assert len(loop.created) == 4


def test_turning_retraining_off_drops_the_condition_and_keeps_the_counters() -> None:
    loop = Loop(spec_of(action="RetrainAndDeploy", cooldown="1m"))
    loop.reconcile(T0, drifted=True, episode=EPISODE)
    assert loop.status is not None
    counted = loop.status.counting_since
    loop.spec = spec_of(action="Alert")
    plan = loop.reconcile(T0 + timedelta(minutes=1), drifted=True, episode=EPISODE)
    assert plan.condition is None
    assert plan.create is None
    assert plan.status.state == "Disabled"
    assert plan.status.counting_since == counted

"""NewData and CodeChange: what is watched, what is compared, one run per change."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from edgeml.api.driftpolicy import DriftPolicySpec, NewDataStatus, RetrainingStatus, TriggeredRun
from edgeml.api.edgemodel import EdgeModelSpec
from edgeml.objects.training_run import TRIGGER_ID_LABEL
from edgeml.plans.retraining import (
    DeploymentFacts,
    ModelFacts,
    PolicyFacts,
    RetrainPlan,
    RunFacts,
    plan_retraining,
)
from edgeml.plans.triggers import (
    ChangeFacts,
    DataLook,
    code_change,
    data_change,
    dataset_condition,
    look_due,
    new_data_status,
    next_look,
    watch_problem,
    watched_dataset,
)
from support.objects import drift_policy, edge_model

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
S3 = {"uri": "s3://data/vib/", "target": "label", "s3": {"endpoint": "http://127.0.0.1:9000"}}
FOLLOWING = DeploymentFacts(name="edge", phase="Healthy", target=3, stable=3)


def spec_of(**fields: Any) -> DriftPolicySpec:
    return DriftPolicySpec.model_validate(drift_policy(**fields)["spec"])


def model_of(**fields: Any) -> EdgeModelSpec:
    return EdgeModelSpec.model_validate(edge_model(**fields)["spec"])


def facts(spec: DriftPolicySpec, data: ChangeFacts | None = None, code: ChangeFacts | None = None):
    return PolicyFacts(
        namespace="ml", name="vib", uid="uid-1", generation=1, created=T0 - timedelta(days=1),
        annotations={}, spec=spec, model="vibration", data=data, code=code,
    )  # fmt: skip


def _plan(
    spec: DriftPolicySpec,
    data: ChangeFacts | None,
    runs: list[RunFacts] = (),  # type: ignore[assignment]
    now: datetime = T0,
    records: list[TriggeredRun] = (),  # type: ignore[assignment]
    status: RetrainingStatus | None = None,
    last: datetime | None = None,
) -> RetrainPlan:
    return plan_retraining(
        facts(spec, data), status, list(records), last, list(runs), ModelFacts(champion=3),
        FOLLOWING, now,
    )  # fmt: skip


def change(current: str, champion: str | None, baseline: str | None) -> ChangeFacts:
    return ChangeFacts(current, champion, baseline, f"New data: {current}.")


WATCHING = {"newData": {"interval": "1m"}, "action": "RetrainAndDeploy", "cooldown": "10m"}


# --- the comparison ------------------------------------------------------------------


def test_the_first_version_seen_becomes_the_baseline_when_the_champion_records_none() -> None:
    plan = _plan(spec_of(**WATCHING), change("dv-1", None, None))
    assert plan.create is None
    assert plan.data_baseline == "dv-1"


def test_the_champions_own_data_asks_for_nothing() -> None:
    plan = _plan(spec_of(**WATCHING), change("dv-1", "dv-1", None))
    assert (plan.create, plan.data_baseline) == (None, "dv-1")


def test_data_the_champion_was_not_trained_on_starts_one_newdata_run() -> None:
    plan = _plan(spec_of(**WATCHING), change("dv-2", "dv-1", "dv-1"))
    assert plan.create is not None
    assert plan.create["spec"]["trigger"] == "NewData"
    assert plan.create["spec"]["reason"] == "New data: dv-2."
    assert plan.data_baseline == "dv-2"
    assert plan.records[0].trigger == "NewData"


def test_the_same_version_again_starts_nothing_even_after_a_lost_status_write() -> None:
    spec = spec_of(**WATCHING)
    first = _plan(spec, change("dv-2", "dv-1", "dv-1"))
    assert first.create is not None
    meta = first.create["metadata"]
    run = RunFacts(meta["name"], "NewData", meta["labels"][TRIGGER_ID_LABEL], T0, "Running")
    # The baseline write was lost: the run itself says the version was retrained for.
    again = _plan(spec, change("dv-2", "dv-1", "dv-1"), [run], now=T0 + timedelta(hours=1))
    assert again.create is None
    assert again.data_baseline == "dv-2"


def test_a_change_the_governor_refuses_waits_and_runs_when_it_may() -> None:
    spec = spec_of(**WATCHING)
    earlier = TriggeredRun(
        name="r0", trigger="Schedule", trigger_id="t0", created=T0 - timedelta(minutes=2),
        outcome="RolledOut",
    )  # fmt: skip
    held = _plan(spec, change("dv-2", "dv-1", "dv-1"), records=[earlier],
                 last=T0 - timedelta(minutes=2))  # fmt: skip
    assert held.create is None
    assert held.status.state == "Cooldown"
    assert held.data_baseline == "dv-1"  # still wanted
    later = _plan(spec, change("dv-2", "dv-1", "dv-1"), records=[earlier],
                  last=T0 - timedelta(minutes=2), now=T0 + timedelta(minutes=9))  # fmt: skip
    assert later.create is not None


def test_a_rejected_version_is_not_retrained_for_again_but_newer_data_is() -> None:
    spec = spec_of(**WATCHING)
    # dv-2 was retrained for (baseline moved on); the champion is still on dv-1.
    assert _plan(spec, change("dv-2", "dv-1", "dv-2")).create is None
    newer = _plan(spec, change("dv-3", "dv-1", "dv-2"))
    assert newer.create is not None
    assert newer.data_baseline == "dv-3"


def test_an_alerting_policy_with_new_data_still_retrains_and_waits_for_approval() -> None:
    spec = spec_of(newData={"interval": "1m"}, action="Alert")
    plan = _plan(spec, change("dv-2", "dv-1", "dv-1"))
    assert plan.create is not None
    assert plan.create["spec"]["requireApproval"] is True


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["dv-1", "dv-2", "dv-3", "dv-4"]), st.booleans()),
        min_size=1,
        max_size=25,
    )
)
def test_each_data_version_is_retrained_for_at_most_once(
    looks: list[tuple[str, bool]],
) -> None:
    """Whatever the versions seen and whichever status writes are lost, no two runs share
    a data version and none is for the champion's."""
    spec = spec_of(newData={"interval": "1m"}, action="Retrain", cooldown="1s")
    runs: dict[str, RunFacts] = {}
    status: RetrainingStatus | None = None
    records: list[TriggeredRun] = []
    baseline: str | None = "dv-1"
    made: list[str] = []
    now = T0
    for version, write in looks:
        now += timedelta(minutes=5)
        # Runs end quickly (Failed keeps the governor simple: no version to promote).
        runs = {n: replace(r, phase="Failed", completed=r.created) for n, r in runs.items()}
        plan = _plan(spec, change(version, "dv-1", baseline), list(runs.values()), now,
                     records, status, None)  # fmt: skip
        if plan.create is not None:
            meta = plan.create["metadata"]
            if meta["name"] not in runs:
                runs[meta["name"]] = RunFacts(
                    meta["name"], "NewData", meta["labels"][TRIGGER_ID_LABEL], now, "Pending"
                )
                made.append(version)
        if write:
            status, records, baseline = plan.status, plan.records, plan.data_baseline
    assert len(made) == len(set(made))
    assert "dv-1" not in made


# --- what is watched, and the watch's status --------------------------------------------


def test_the_watched_dataset_is_the_override_else_the_models() -> None:
    model = model_of(training={"dataset": S3})
    assert watched_dataset(model, spec_of()).uri == "s3://data/vib/"  # type: ignore[union-attr]
    newest = {**S3, "select": "Newest"}
    spec = spec_of(retraining={"overrides": {"dataset": newest}})
    assert watched_dataset(model, spec).select == "Newest"  # type: ignore[union-attr]


def test_a_file_dataset_cannot_be_watched() -> None:
    problem = watch_problem(model_of().training.dataset)
    assert problem is not None
    assert "file:///data/vibration.csv" in problem
    assert "s3:// or http(s)://" in problem
    assert watch_problem(model_of(training={"dataset": S3}).training.dataset) is None


def test_a_look_is_due_at_the_interval_and_sooner_after_an_error() -> None:
    spec = spec_of(newData={"interval": "5m"})
    assert look_due(spec, None, "s3://data/vib/", T0)
    ok = NewDataStatus(uri="s3://data/vib/", data_version="dv-1", checked=T0)
    assert not look_due(spec, ok, "s3://data/vib/", T0 + timedelta(minutes=4))
    assert look_due(spec, ok, "s3://data/vib/", T0 + timedelta(minutes=5))
    assert look_due(spec, ok, "s3://data/other/", T0 + timedelta(seconds=1))  # uri changed
    failed = ok.model_copy(update={"error": "down"})
    assert next_look(spec, failed) == T0 + timedelta(seconds=30)
    assert not look_due(spec_of(), ok, "s3://data/vib/", T0 + timedelta(days=1))


def test_a_failed_look_keeps_the_last_good_version_and_says_so() -> None:
    ok = new_data_status(None, DataLook("s3://data/vib/", T0, "dv-1", 2, "vib/b.csv"))
    assert ok is not None
    assert (ok.data_version, ok.objects, ok.error) == ("dv-1", 2, None)
    look = DataLook("s3://data/vib/", T0 + timedelta(minutes=1), error_reason="DatasetAccessDenied",
                    error="s3://data/vib/: refused the credentials")  # fmt: skip
    failed = new_data_status(ok, look)
    assert failed is not None
    assert (failed.data_version, failed.checked) == ("dv-1", look.at)
    condition = dataset_condition(look, failed)
    assert condition is not None
    assert (condition.status, condition.reason) == ("False", "DatasetAccessDenied")
    assert "dv-1, is kept" in condition.message
    good = dataset_condition(DataLook("s3://data/vib/", T0, "dv-1", 2, "vib/b.csv"), ok)
    assert good is not None
    assert (good.status, good.reason) == ("True", "Watching")
    assert "2 objects, newest vib/b.csv" in good.message


def test_the_data_comparison_names_the_champion() -> None:
    status = NewDataStatus(uri="s3://d/v/", data_version="dv-2", objects=3, newest="v/c.csv",
                           baseline="dv-1")  # fmt: skip
    found = data_change(status, {"version": 4, "dataVersion": "dv-1"})
    assert found is not None
    assert (found.current, found.champion, found.baseline) == ("dv-2", "dv-1", "dv-1")
    assert "champion version 4 was trained on data version dv-1" in found.reason
    assert data_change(NewDataStatus(uri="s3://d/v/"), None) is None


# --- code change ------------------------------------------------------------------------


def test_the_template_digest_follows_what_decides_the_model() -> None:
    spec = spec_of(codeChange=True)
    model = model_of()
    champion = {"version": 2, "templateDigest": "old"}
    base = code_change(model, spec, "img:1", champion, None)
    assert base is not None
    assert base.current != "old"
    params = model_of(training={"estimator": {"params": {"n_estimators": 7}}})
    assert code_change(params, spec, "img:1", champion, None).current != base.current  # type: ignore[union-attr]
    assert code_change(model, spec, "img:2", champion, None).current != base.current  # type: ignore[union-attr]
    resources = model_of(training={"resources": {"limits": {"cpu": "2"}}})
    assert code_change(resources, spec, "img:1", champion, None).current == base.current  # type: ignore[union-attr]
    assert code_change(model, spec_of(), "img:1", champion, None) is None  # not opted in
    assert code_change(model, spec, "img:1", None, None) is None  # no champion yet


def test_a_changed_template_starts_one_codechange_run() -> None:
    spec = spec_of(codeChange=True, action="RetrainAndDeploy")
    found = code_change(model_of(), spec, "img:1", {"version": 2, "templateDigest": "old"}, None)
    plan = plan_retraining(
        facts(spec, code=found), None, [], None, [], ModelFacts(champion=2), FOLLOWING, T0
    )
    assert plan.create is not None
    assert plan.create["spec"]["trigger"] == "CodeChange"
    assert "since champion version 2 was trained" in plan.create["spec"]["reason"]
    assert plan.code_baseline == found.current  # type: ignore[union-attr]

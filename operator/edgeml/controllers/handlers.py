"""Registration of every kind's handlers with kopf: react to each change, resync on a timer."""

from __future__ import annotations

import asyncio
import functools
from datetime import UTC, datetime
from typing import Any, cast

import kopf

from edgeml.api.common import GROUP, VERSION
from edgeml.api.kinds import KINDS, KindInfo
from edgeml.config import OperatorConfig
from edgeml.controllers import watched
from edgeml.controllers.driftpolicy import act_on_drift, observe_drift
from edgeml.controllers.edgedeployment import act_on_deployment, observe_deployment
from edgeml.controllers.edgemodel import act_on_model, observe_model
from edgeml.controllers.lanes import RESYNC, WOKEN, resync_unless_woken, run_in
from edgeml.controllers.reconcile import Controller, reconcile
from edgeml.controllers.trainingrun import observe_run
from edgeml.kube.login import connection_info
from edgeml.kube.reads import get_custom
from edgeml.metrics import DRIFT, PHASES
from edgeml.objects.inference import DEPLOYMENT_LABEL
from edgeml.objects.meta import MANAGED_BY
from edgeml.objects.training_job import RUN_LABEL
from edgeml.objects.training_run import POLICY_LABEL
from edgeml.plans.driftpolicy import plan_drift_policy
from edgeml.plans.edgedeployment import plan_edge_deployment
from edgeml.plans.edgemodel import plan_edge_model
from edgeml.plans.parsing import Parsed
from edgeml.plans.trainingrun import TrainingWorld, plan_training_run
from edgeml.rollout.fleet import node_online, selects


@functools.cache
def config() -> OperatorConfig:
    """The operator's configuration, read once."""
    return OperatorConfig.from_env()


# Level-triggered: every watch event reconciles, and so does this timer, which catches
# what no event announces (a referenced object that appeared, a registry that moved).
RESYNC_SECONDS = config().resync_seconds


def _plan_run(parsed: Parsed[Any, Any], world: TrainingWorld, now: datetime) -> Any:
    return plan_training_run(parsed, world, config(), now=now)


def _info(kind: str) -> KindInfo:
    return next(k for k in KINDS if k.kind == kind)


CONTROLLERS: tuple[Controller, ...] = (
    Controller(
        _info("EdgeModel"),
        lambda parsed: observe_model(parsed, config()),
        lambda p, w, now: plan_edge_model(p, w, now=now),
        lambda parsed, plan, now: act_on_model(parsed, plan, now, config()),
    ),
    Controller(_info("TrainingRun"), observe_run, _plan_run),
    Controller(
        _info("EdgeDeployment"),
        lambda parsed: observe_deployment(parsed, config()),
        lambda p, w, now: plan_edge_deployment(p, w, now=now, config=config()),
        act_on_deployment,
    ),
    Controller(
        _info("DriftPolicy"),
        lambda parsed: observe_drift(parsed, config()),
        lambda p, w, now: plan_drift_policy(p, w, now=now),
        lambda parsed, plan, now: act_on_drift(parsed, plan, now, config()),
    ),
)


BY_KIND = {ctrl.info.kind: ctrl for ctrl in CONTROLLERS}


LOOPED = ("edgedeployments", "driftpolicies")
"""Kinds reconciled by a loop per object (see below) rather than events and a timer."""
_KIND_OF = {"edgedeployments": "EdgeDeployment", "driftpolicies": "DriftPolicy"}


def register(ctrl: Controller) -> None:
    """Register the event, timer and delete handlers of one kind."""
    plural = ctrl.info.plural
    if plural in LOOPED:
        return  # a daemon per object instead: see below

    @kopf.on.event(GROUP, VERSION, plural, id=f"{plural}-event")
    async def on_event(type: str | None, body: kopf.Body, logger: Any, **_: Any) -> None:
        if type == "DELETED":
            PHASES.observe(ctrl.info.kind, f"{body.metadata.namespace}/{body.metadata.name}", None)
            return
        if body.metadata.get("deletionTimestamp"):
            return
        await run_in(WOKEN, reconcile, ctrl, body, logger)

    @kopf.timer(GROUP, VERSION, plural, id=f"{plural}-resync", interval=RESYNC_SECONDS, idle=None)
    async def on_timer(body: kopf.Body, logger: Any, **_: Any) -> None:
        await run_in(RESYNC, reconcile, ctrl, body, logger)

    @kopf.on.delete(GROUP, VERSION, plural, id=f"{plural}-delete")
    def on_delete(body: kopf.Body, logger: Any, **_: Any) -> None:
        # Children go with their owner references; nothing outside the cluster to clean yet.
        logger.info(f"{ctrl.info.kind} deleted")


for _ctrl in CONTROLLERS:
    register(_ctrl)


# --- EdgeDeployments and DriftPolicies: one loop per object, woken by what it watches ---
#
# A rollout reacts to many small changes (each pod turning ready, a node going offline).
# Reconciling on every one of them would list a thousand pods a thousand times; instead
# each EdgeDeployment has a daemon that reconciles when woken, after a short debounce
# that gathers a burst of changes into one pass, and at the machine's next timer. A
# DriftPolicy's loop wakes at its next evaluation (the plan's requeue_at), whatever the
# operator-wide resync interval. A pass something asked for (a wake, or an object whose
# spec the operator has not observed yet) runs in the woken lane; a timer pass in the
# resync lane, moved to the woken one if a wake comes while it is queued (lanes.py).

DEBOUNCE_SECONDS = 0.5
ERROR_BACKOFF_MAX = 60.0
_wake: dict[tuple[str, str, str], asyncio.Event] = {}
_node_digest: dict[str, tuple[tuple[tuple[str, str], ...], bool]] = {}
_selectors: dict[tuple[str, str], dict[str, str]] = {}
"""Each EdgeDeployment's nodeSelector, as its last event showed it: a node's change
wakes only the deployments that select it (before or after the change)."""


def wake(namespace: str, name: str, plural: str = "edgedeployments") -> None:
    """Have the object's loop reconcile soon."""
    event = _wake.get((plural, namespace, name))
    if event is not None:
        event.set()


def _delay_until(at: datetime | None) -> float:
    if at is None:
        return RESYNC_SECONDS
    seconds = (at - datetime.now(UTC)).total_seconds()
    return min(RESYNC_SECONDS, max(DEBOUNCE_SECONDS, seconds))


async def _loop(plural: str, body: kopf.Body, logger: Any, stopped: Any) -> None:
    """Reconcile the object whenever woken, and at least every RESYNC_SECONDS."""
    key = (plural, body.metadata.namespace or "", body.metadata.name or "")
    event = _wake.setdefault(key, asyncio.Event())
    ctrl = BY_KIND[_KIND_OF[plural]]
    backoff = 1.0
    asked = _unobserved(body)
    try:
        while not stopped:
            delay = RESYNC_SECONDS
            if not body.metadata.get("deletionTimestamp"):
                try:
                    if asked:
                        plan = await run_in(WOKEN, reconcile, ctrl, body, logger)
                    else:
                        plan = await resync_unless_woken(reconcile, event, ctrl, body, logger)
                    backoff = 1.0
                    delay = DEBOUNCE_SECONDS if plan is None else _delay_until(plan.requeue_at)
                except Exception as err:  # logged and counted by reconcile; try again later
                    logger.error(f"reconcile failed, retrying in {backoff:.0f} s: {err}")
                    delay, backoff = backoff, min(backoff * 2, ERROR_BACKOFF_MAX)
            asked = await _woken_or_stopped(event, stopped, delay)
            if stopped:
                break
            await asyncio.sleep(DEBOUNCE_SECONDS)
            asked = asked or event.is_set()  # a wake during the debounce asks too
            event.clear()
    finally:
        _wake.pop(key, None)


async def _woken_or_stopped(event: asyncio.Event, stopped: Any, timeout: float) -> bool:
    """Wait until the object's loop is woken (True), kopf stops its daemon or `timeout`
    passes (False). Waiting on the stop too ends the loop at once when the object is
    deleted or the operator exits, instead of at kopf's cancellation timeout."""
    woken = asyncio.ensure_future(event.wait())
    stopping = asyncio.ensure_future(stopped.wait())
    try:
        done, _ = await asyncio.wait(
            {woken, stopping}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        woken.cancel()
        stopping.cancel()
    return woken in done


def _unobserved(body: kopf.Body) -> bool:
    """The operator has not reconciled this generation of the object yet (new or changed
    while it was down): a pass worth putting ahead of the resyncs."""
    status = body.get("status") or {}
    return bool(status.get("observedGeneration") != body.metadata.get("generation"))


@kopf.on.login(id="edgeml-login")
def login(**_: Any) -> kopf.ConnectionInfo:
    """kopf connects as our own client does (kube/login.py says why)."""
    return connection_info()


@kopf.on.event(GROUP, VERSION, "edgedeployments", id="edgedeployments-event")
async def on_deployment_event(type: str | None, body: kopf.Body, **_: Any) -> None:
    """A spec, annotation or status change: wake the object's loop."""
    key = (body.metadata.namespace or "", body.metadata.name or "")
    if type == "DELETED":
        PHASES.observe("EdgeDeployment", f"{key[0]}/{key[1]}", None)
        _selectors.pop(key, None)
        return
    selector = (body.get("spec") or {}).get("nodeSelector") or {}
    _selectors[key] = {str(k): str(v) for k, v in selector.items()}
    wake(*key)


@kopf.daemon(
    GROUP, VERSION, "edgedeployments", id="edgedeployments-rollout", cancellation_timeout=10.0
)
async def rollout_loop(body: kopf.Body, logger: Any, stopped: Any, **kwargs: Any) -> None:
    """Reconcile the EdgeDeployment whenever woken, and at least every RESYNC_SECONDS."""
    watched.attach(kwargs["watched_nodes"], kwargs["watched_pods"])  # the kopf indexes
    await _loop("edgedeployments", body, logger, stopped)


@kopf.on.event(GROUP, VERSION, "driftpolicies", id="driftpolicies-event")
async def on_policy_event(type: str | None, body: kopf.Body, **_: Any) -> None:
    """A spec or annotation change (or our own status write): wake the policy's loop."""
    namespace, name = body.metadata.namespace or "", body.metadata.name or ""
    if type == "DELETED":
        PHASES.observe("DriftPolicy", f"{namespace}/{name}", None)
        DRIFT.forget(namespace, name)
        return
    wake(namespace, name, "driftpolicies")


@kopf.daemon(
    GROUP, VERSION, "driftpolicies", id="driftpolicies-evaluate", cancellation_timeout=10.0
)
async def drift_loop(body: kopf.Body, logger: Any, stopped: Any, **kwargs: Any) -> None:
    """Reconcile the DriftPolicy when woken, and at its next evaluation."""
    watched.attach(kwargs["watched_nodes"], kwargs["watched_pods"])  # the kopf indexes
    await _loop("driftpolicies", body, logger, stopped)


@kopf.on.delete(GROUP, VERSION, "driftpolicies", id="driftpolicies-delete")
def on_policy_delete(body: kopf.Body, logger: Any, **_: Any) -> None:
    """The TrainingRuns it created are history; nothing else to release."""
    logger.info("DriftPolicy deleted")


@kopf.on.delete(GROUP, VERSION, "edgedeployments", id="edgedeployments-delete")
def on_deployment_delete(body: kopf.Body, logger: Any, **_: Any) -> None:
    """Pods and the Service go with their owner references."""
    logger.info("EdgeDeployment deleted")


@kopf.on.event(
    "",
    "v1",
    "pods",
    labels={"app.kubernetes.io/managed-by": MANAGED_BY, DEPLOYMENT_LABEL: kopf.PRESENT},
)
async def on_inference_pod(body: kopf.Body, **_: Any) -> None:
    """An inference pod changed (scheduled, ready, gone): wake its EdgeDeployment."""
    wake(body.metadata.namespace or "", body.metadata.labels[DEPLOYMENT_LABEL])


@kopf.on.event("", "v1", "nodes")
async def on_node(type: str | None, body: kopf.Body, **_: Any) -> None:
    """A node joined, left, changed labels or readiness: wake the EdgeDeployments that
    select it, before or after the change (a deployment whose selector is not known yet
    is woken too).

    Heartbeats change nothing we look at, so they wake nobody.
    """
    name = body.metadata.name or ""
    before = _node_digest.get(name)
    if type == "DELETED":
        _node_digest.pop(name, None)
        now_labels: dict[str, str] = {}
    else:
        seen = (tuple(sorted(body.metadata.labels.items())), node_online(body))
        if before == seen:
            return
        _node_digest[name] = seen
        now_labels = dict(seen[0])
    then_labels = dict(before[0]) if before else {}
    for plural, namespace, deployment in list(_wake):
        if plural != "edgedeployments":
            continue
        selector = _selectors.get((namespace, deployment))
        if selector is None or selects(selector, now_labels) or selects(selector, then_labels):
            wake(namespace, deployment)


_champions: dict[tuple[str, str], object] = {}


@kopf.on.event(GROUP, VERSION, "edgemodels", id="edgemodels-champion")
async def on_model_champion(type: str | None, body: kopf.Body, **_: Any) -> None:
    """A new champion: wake the namespace's deployments (those following the alias roll
    it out) and policies (their retrains' outcomes) now, not at their next resync."""
    key = (body.metadata.namespace or "", body.metadata.name or "")
    if type == "DELETED":
        _champions.pop(key, None)
        return
    champion = ((body.get("status") or {}).get("champion") or {}).get("version")
    if _champions.get(key, champion) == champion:
        _champions[key] = champion
        return
    _champions[key] = champion
    for plural, namespace, name in list(_wake):
        if namespace == key[0]:
            wake(namespace, name, plural)


@kopf.on.event(GROUP, VERSION, "trainingruns", id="trainingruns-lineage")
async def on_training_run(type: str | None, body: kopf.Body, logger: Any, **_: Any) -> None:
    """A run a policy created changed: wake the policy. A run that just registered a
    version: reconcile its EdgeModel now, so promotion does not wait for a resync."""
    namespace = body.metadata.namespace or ""
    policy = body.metadata.labels.get(POLICY_LABEL)
    if policy:
        wake(namespace, policy, "driftpolicies")
    status = body.get("status") or {}
    if type == "DELETED" or status.get("phase") != "Succeeded" or not status.get("modelVersion"):
        return
    try:
        finished = datetime.fromisoformat(str(status.get("completionTime")).replace("Z", "+00:00"))
    except ValueError:
        return
    if (datetime.now(UTC) - finished).total_seconds() > RECENT_SECONDS:
        return  # history: the model's own resync has long seen it
    name = ((body.get("spec") or {}).get("modelRef") or {}).get("name", "")
    await run_in(WOKEN, _reconcile_model, namespace, name, logger)


def _reconcile_model(namespace: str, name: str, logger: Any) -> None:
    model = get_custom("edgemodels", namespace, name)
    if model is not None and not (model.get("metadata") or {}).get("deletionTimestamp"):
        reconcile(BY_KIND["EdgeModel"], kopf.Body(cast(kopf.RawBody, model)), logger)


RECENT_SECONDS = 300


@kopf.on.event(
    "batch",
    "v1",
    "jobs",
    labels={RUN_LABEL: kopf.PRESENT, "app.kubernetes.io/managed-by": MANAGED_BY},
)
def on_training_job(body: kopf.Body, logger: Any, **_: Any) -> None:
    """A training Job changed: reconcile its TrainingRun now rather than at the next resync."""
    namespace = body.metadata.namespace or ""
    run = get_custom("trainingruns", namespace, body.metadata.labels[RUN_LABEL])
    if run is None or (run.get("metadata") or {}).get("deletionTimestamp"):
        return
    reconcile(BY_KIND["TrainingRun"], kopf.Body(cast(kopf.RawBody, run)), logger)

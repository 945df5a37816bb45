"""The one reconcile loop every kind goes through; each kind supplies observe and plan."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import kopf

from edgeml.api.common import StatusBase
from edgeml.api.kinds import KindInfo
from edgeml.kube.apply import ApplyRefusedError, apply_object
from edgeml.kube.events import post_events
from edgeml.kube.status import patch_status
from edgeml.metrics import PHASES, RECONCILE_ERRORS, RECONCILE_SECONDS, RECONCILES
from edgeml.plans.common import READY, ConditionSpec, Plan, apply_conditions, transition_events
from edgeml.plans.parsing import Parsed, parse

Observe = Callable[[Parsed[Any, Any]], Any]
Decide = Callable[[Parsed[Any, Any], Any, datetime], Plan[Any]]
Act = Callable[[Parsed[Any, Any], Plan[Any], datetime], Plan[Any]]


def apply_children(parsed: Parsed[Any, Any], plan: Plan[Any], now: datetime) -> Plan[Any]:
    """The default act step: server-side apply every child object of the plan."""
    for manifest in plan.objects:
        apply_object(manifest)
    return plan


@dataclass(frozen=True)
class Controller:
    """A kind and its kind-specific steps: observe the world, decide (pure), act."""

    info: KindInfo
    observe: Observe
    decide: Decide
    act: Act = apply_children


def now() -> datetime:
    """The current time at the precision Kubernetes timestamps carry (seconds)."""
    return datetime.now(UTC).replace(microsecond=0)


def status_patch(old: Mapping[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch (RFC 7386) turning status `old` into `new`; empty if equal.

    Nested objects are diffed key by key, so a key dropped at any depth becomes None
    (removed); lists are replaced whole, as merge patches do.
    """
    old = dict(old or {})
    patch: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            inner = status_patch(before, value)
            if inner:
                patch[key] = inner
        elif before != value or key not in old:
            patch[key] = value
    patch.update({k: None for k in old if k not in new})
    return patch


APPLY_FAILED = "ApplyFailed"


def refusal_status(
    ctrl: Controller, parsed: Parsed[Any, Any], refusal: str, at: datetime
) -> StatusBase:
    """The object's status as it was, with Ready=False saying which child the API server
    refused and why: nothing the refused step would have done is claimed."""
    base = parsed.status or ctrl.info.status_model()
    message = (
        f"The API server refused a child object: {refusal}. The operator retries with "
        "backoff; fix the cause (a quota, an admission policy, the cluster's limits) and "
        "it carries on."
    )
    wanted = [ConditionSpec(READY, "False", APPLY_FAILED, message)]
    generation = parsed.metadata.generation
    conditions = apply_conditions(base.conditions, wanted, now=at, generation=generation)
    return base.model_copy(update={"conditions": conditions})


def report_refusal(
    ctrl: Controller, body: kopf.Body, parsed: Parsed[Any, Any], refusal: str, at: datetime
) -> None:
    """Write the refusal to status (and a Warning Event when it is news)."""
    status = refusal_status(ctrl, parsed, refusal, at)
    changes = status_patch(body.get("status"), status.to_json())
    meta = body.metadata
    if changes and patch_status(
        ctrl.info.plural,
        meta.namespace or "",
        meta.name or "",
        str(meta.get("resourceVersion", "")),
        changes,
    ):
        post_events(body, transition_events(parsed.status, status))


def reconcile(ctrl: Controller, live: kopf.Body, logger: Any) -> Plan[Any] | None:
    """Bring one object's status and children in line with the world.

    Returns the plan it wrote, or None when another writer came first (the watch brings
    the newer object and the next reconcile decides again)."""
    kind = ctrl.info.kind
    started = time.monotonic()
    # A timer's body is a live view that watch events replace under our feet: read one
    # version of it, or the old status and the resourceVersion precondition may disagree.
    body = kopf.Body(cast(kopf.RawBody, copy.deepcopy(dict(live))))
    try:
        parsed = parse(ctrl.info.model, ctrl.info.status_model, body)
        world = ctrl.observe(parsed)
        at = now()
        decided = ctrl.decide(parsed, world, at)
        try:
            plan = ctrl.act(parsed, decided, at)
        except ApplyRefusedError as err:
            report_refusal(ctrl, body, parsed, str(err), at)
            raise
        changes = status_patch(body.get("status"), plan.status.to_json())
        meta = body.metadata
        if changes:
            written = patch_status(
                ctrl.info.plural,
                meta.namespace or "",
                meta.name or "",
                str(meta.get("resourceVersion", "")),
                changes,
            )
            if not written:
                # Someone wrote first; the watch brings the newer object and we decide again.
                RECONCILES.labels(kind, "conflict").inc()
                return None
            logger.info(f"status: phase {plan.status.phase}, changed {', '.join(sorted(changes))}")
            post_events(body, plan.events)
        PHASES.observe(kind, f"{meta.namespace}/{meta.name}", plan.status.phase)
    except kopf.TemporaryError:
        RECONCILES.labels(kind, "retry").inc()
        raise
    except Exception as err:
        RECONCILES.labels(kind, "error").inc()
        RECONCILE_ERRORS.labels(kind, type(err).__name__).inc()
        raise
    else:
        RECONCILES.labels(kind, "ok").inc()
        return plan
    finally:
        RECONCILE_SECONDS.labels(kind).observe(time.monotonic() - started)

"""DriftPolicy observe and act: the pods' window counts and the baselines in; status out.

The counts are read only when an evaluation is due (plans.driftpolicy.evaluation_due),
from each serving pod's /drift/window (directly or through the API server) or from
Prometheus; each served version's baseline comes from its MLflow run.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from edgeml.api.edgedeployment import MetricsSource
from edgeml.api.notify import Receiver
from edgeml.config import OperatorConfig
from edgeml.controllers.notify import deliver, read_targets
from edgeml.drift.baseline import Baseline, BaselineFormatError, parse_baseline
from edgeml.drift.windows import WindowCounts, WindowFormatError, by_version, parse_pod_window
from edgeml.kube.apply import CreateRefusedError, create_custom
from edgeml.kube.reads import get_custom, list_custom, list_nodes_raw, list_pods_raw
from edgeml.kube.scrape import Source, scrape
from edgeml.metrics import DRIFT
from edgeml.objects.inference import selector
from edgeml.objects.training_run import (
    POLICY_LABEL,
    TICK_ANNOTATION,
    TRIGGER_ID_LABEL,
    label_value,
)
from edgeml.plans.common import ConditionSpec, Event, Plan, apply_conditions, transition_events
from edgeml.plans.driftpolicy import (
    NOTIFIED,
    DriftWorld,
    evaluation_due,
    source_of,
    window_of,
)
from edgeml.plans.notifications import RETRAIN_ALERT_NAME as RETRAIN_ALERT
from edgeml.plans.notifications import Send, notified_condition
from edgeml.plans.parsing import Parsed
from edgeml.plans.retraining import RETRAINING, CreateRun, RunFacts
from edgeml.prometheus import PrometheusUnavailableError, window_counts
from edgeml.registry.client import RegistryUnavailableError, get_baseline

ZONE_LABEL = "topology.kubernetes.io/zone"
WINDOW_PATH = "/drift/window"
log = logging.getLogger(__name__)


def _ready(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def _zones(deployment: Mapping[str, Any]) -> dict[str, str]:
    selector_ = (deployment.get("spec") or {}).get("nodeSelector") or {}
    nodes = list_nodes_raw(",".join(f"{k}={v}" for k, v in sorted(selector_.items())))
    return {
        n["metadata"]["name"]: (n["metadata"].get("labels") or {}).get(ZONE_LABEL, "")
        for n in nodes
    }


def _groups(
    windows: Sequence[tuple[str, WindowCounts]],
) -> dict[str, dict[str, WindowCounts]]:
    """The fleet ("") and each zone, summed per version."""
    zoned: dict[str, list[WindowCounts]] = defaultdict(list)
    for zone, w in windows:
        if zone:
            zoned[zone].append(w)
    groups = {zone: by_version(ws) for zone, ws in zoned.items()}
    groups[""] = by_version([w for _, w in windows])
    return groups


def _read_pods(
    pods: Sequence[Mapping[str, Any]],
    zones: Mapping[str, str],
    source: MetricsSource,
    port: int,
    seconds: int,
    config: OperatorConfig,
) -> tuple[list[tuple[str, WindowCounts]], int]:
    how: Source = "APIServerProxy" if source.type == "APIServerProxy" else "PodIP"
    pages = scrape(
        pods, port, how, config.metrics_timeout_seconds, WINDOW_PATH, {"seconds": str(seconds)}
    )
    out = []
    read = 0
    for pod in pods:
        name = pod["metadata"]["name"]
        page = pages.get(name)
        if page is None:
            continue
        try:
            window = parse_pod_window(json.loads(page))
        except (ValueError, WindowFormatError) as err:
            log.warning("pod %s answered a window that cannot be read: %s", name, err)
            continue
        read += 1
        if window is not None:
            out.append((zones.get((pod.get("spec") or {}).get("nodeName", ""), ""), window))
    return out, read


def _baselines(
    versions: Sequence[str], model: Mapping[str, Any] | None, config: OperatorConfig
) -> tuple[dict[str, Baseline], dict[str, str]]:
    """Each version's baseline, from the run the EdgeModel's status names for it."""
    found: dict[str, Baseline] = {}
    missing: dict[str, str] = {}
    status = (model or {}).get("status") or {}
    spec = (model or {}).get("spec") or {}
    uri = (spec.get("registry") or {}).get("trackingUri") or config.mlflow_tracking_uri
    runs = {str(v.get("version")): v.get("runId") for v in status.get("versions") or []}
    champion = status.get("champion") or {}
    runs.setdefault(str(champion.get("version")), champion.get("runId"))
    for version in versions:
        run_id = runs.get(version)
        if not uri:
            missing[version] = "no MLflow tracking URI is configured"
        elif not run_id:
            missing[version] = "the EdgeModel lists no MLflow run for it"
        else:
            try:
                doc = get_baseline(uri, run_id)
                if doc is None:
                    missing[version] = f"run {run_id} logged no edgeml/baseline.json"
                else:
                    found[version] = parse_baseline(version, doc)
            except RegistryUnavailableError as err:
                missing[version] = f"MLflow could not be read: {err}"
            except BaselineFormatError as err:
                missing[version] = f"its baseline cannot be read: {err}"
    return found, missing


def observe_drift(parsed: Parsed[Any, Any], config: OperatorConfig) -> DriftWorld:
    """The deployment, and when an evaluation is due: windows and baselines."""
    if parsed.obj is None:
        return DriftWorld()
    spec = parsed.obj.spec
    namespace = parsed.metadata.namespace or ""
    deployment = get_custom("edgedeployments", namespace, spec.deployment_ref.name)
    if deployment is None:
        return DriftWorld()
    receivers = receivers_of(spec, config)
    targets = read_targets(receivers, namespace if spec.notify else config.namespace)
    model = get_custom(
        "edgemodels",
        namespace,
        ((deployment.get("spec") or {}).get("modelRef") or {}).get("name", ""),
    )
    # An alerting policy creates no runs: no list to read.
    retrains = spec.action != "Alert" or spec.schedule is not None
    runs = read_runs(namespace, parsed.metadata.name) if retrains else ()
    if not evaluation_due(parsed, datetime.now(UTC)):
        return DriftWorld(deployment, targets=targets, receivers=receivers, model=model, runs=runs)
    started = time.monotonic()
    source = source_of(spec, deployment)
    seconds = int(window_of(spec).total_seconds())
    pods = [
        p
        for p in list_pods_raw(namespace, selector(deployment["metadata"]["name"]))
        if _ready(p) and not p["metadata"].get("deletionTimestamp")
    ]
    zones = _zones(deployment)
    port = int(((deployment.get("spec") or {}).get("serving") or {}).get("port") or 8080)
    try:
        if source.type == "Prometheus" and source.prometheus is not None:
            by_zone: dict[str, list[str]] = defaultdict(list)
            for p in pods:
                by_zone[zones.get(p["spec"].get("nodeName", ""), "")].append(p["metadata"]["name"])
            prom = source.prometheus
            zoned = window_counts(
                prom.address, namespace, by_zone, seconds, config.metrics_timeout_seconds,
                prom.pod_label, prom.namespace_label,
            )  # fmt: skip
            windows = [(zone, w) for zone, ws in zoned.items() for w in ws]
            read = len(pods)
        else:
            windows, read = _read_pods(pods, zones, source, port, seconds, config)
    except PrometheusUnavailableError as err:
        DRIFT.failed(namespace, parsed.metadata.name, "SourceUnavailable")
        return DriftWorld(deployment, True, pods_total=len(pods), source=source.type,
                          source_error=str(err), targets=targets, receivers=receivers,
                          model=model, runs=runs)  # fmt: skip
    if pods and read == 0:
        DRIFT.failed(namespace, parsed.metadata.name, "SourceUnavailable")
        return DriftWorld(
            deployment, True, pods_total=len(pods), source=source.type,
            source_error=f"none of the {len(pods)} serving pods answered {WINDOW_PATH}",
            targets=targets,
            receivers=receivers,
            model=model,
            runs=runs,
        )  # fmt: skip
    versions = sorted({w.version for _, w in windows})
    baselines, missing = _baselines(versions, model, config)
    if versions and not baselines:
        DRIFT.failed(namespace, parsed.metadata.name, "BaselineMissing")
    DRIFT.evaluated(namespace, parsed.metadata.name, time.monotonic() - started)
    return DriftWorld(
        deployment,
        True,
        _groups(windows),
        pods_total=len(pods),
        pods_read=read,
        baselines=baselines,
        missing_baselines=missing,
        source=source.type,
        targets=targets,
        receivers=receivers,
        model=model,
        runs=runs,
    )


def _time(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


def read_runs(namespace: str, policy: str) -> tuple[RunFacts, ...]:
    """The TrainingRuns this policy created (by their label), as plain facts."""
    out = []
    for run in list_custom("trainingruns", namespace, f"{POLICY_LABEL}={label_value(policy)}"):
        meta = run.get("metadata") or {}
        labels = meta.get("labels") or {}
        status = run.get("status") or {}
        trigger = (run.get("spec") or {}).get("trigger", "Manual")
        version = status.get("modelVersion")
        out.append(
            RunFacts(
                name=meta.get("name", ""),
                trigger=trigger
                if trigger in ("Manual", "Schedule", "Drift", "NewData")
                else "Manual",
                trigger_id=labels.get(TRIGGER_ID_LABEL, ""),
                created=_time(meta.get("creationTimestamp")) or datetime.now(UTC),
                phase=status.get("phase"),
                version=version if isinstance(version, int) else None,
                completed=_time(status.get("completionTime")),
                failure=status.get("failureReason"),
                tick=_time((meta.get("annotations") or {}).get(TICK_ANNOTATION)),
            )
        )
    return tuple(out)


def _create_runs(parsed: Parsed[Any, Any], plan: Plan[Any], now: datetime) -> Plan[Any]:
    """Create the TrainingRun the governor decided on; a refusal is reported, not retried
    blindly (the next reconcile decides again)."""
    creates = [a for a in plan.actions if isinstance(a, CreateRun)]
    if not creates:
        return plan
    manifest = creates[0].manifest
    name = manifest["metadata"]["name"]
    who = f"{parsed.metadata.namespace}/{parsed.metadata.name}"
    try:
        created = create_custom("trainingruns", manifest)
    except CreateRefusedError as err:
        log.warning("%s: could not create TrainingRun %s: %s", who, name, err)
        old = parsed.status
        status = plan.status
        hint = " (the operator needs RBAC create on trainingruns)" if "HTTP 403" in str(err) else ""
        message = f"Could not create TrainingRun {name}: {err}{hint}."
        # Nothing trains: say so, and leave the tick unconsumed so the next pass retries it
        # (under the same name).
        before = old.retraining if old is not None else None
        retraining = status.retraining.model_copy(
            update={
                "state": "Idle",
                "until": None,
                "message": message,
                "last_tick": before.last_tick if before is not None else None,
            }
        )
        status = status.model_copy(
            update={
                "retraining": retraining,
                "triggered_runs": [r for r in status.triggered_runs if r.name != name],
                "last_retrain": old.last_retrain if old is not None else None,
                "conditions": apply_conditions(
                    status.conditions,
                    [ConditionSpec(RETRAINING, "False", "CreateFailed", message)],
                    now=now,
                    generation=parsed.metadata.generation,
                ),
            }
        )
        events = [e for e in plan.events if e.reason != "RetrainTriggered"]
        return replace(
            plan, status=status, events=[*events, Event("Warning", "CreateFailed", message)]
        )
    if not created:  # made by an earlier pass whose status write was lost: announced then
        plan = replace(plan, events=[e for e in plan.events if e.reason != "RetrainTriggered"])
    log.info("%s: %s TrainingRun %s", who, "created" if created else "found existing", name)
    return plan


def act_on_drift(
    parsed: Parsed[Any, Any], plan: Plan[Any], now: datetime, config: OperatorConfig
) -> Plan[Any]:
    """Create the TrainingRun the governor asked for, deliver the notifications owed,
    record each outcome in status, and publish the evaluation as operator metrics."""
    plan = _create_runs(parsed, plan, now)
    status = plan.status
    sends = [a for a in plan.actions if isinstance(a, Send)]
    if sends and parsed.obj is not None:
        who = f"{parsed.metadata.namespace}/{parsed.metadata.name}"
        retrains = [s for s in sends if s.delivery.alert.labels.get("alertname") == RETRAIN_ALERT]
        drift = [s for s in sends if s not in retrains]
        status = status.model_copy(
            update={
                "notifications": deliver(who, drift, status.notifications, now),
                "retrain_notifications": deliver(who, retrains, status.retrain_notifications, now),
            }
        )
        targets = {s.delivery.receiver.name: s.target for s in sends}
        receivers = receivers_of(parsed.obj.spec, config)
        found = [
            c
            for records in (status.notifications, status.retrain_notifications)
            if (c := notified_condition(receivers, records, targets)) is not None
        ]
        condition = next((c for c in found if c[0] == "False"), found[0] if found else None)
        before = next((c for c in status.conditions if c.type == NOTIFIED), None)
        # A receiver whose Secret cannot be used was never sent to: that finding stands.
        unusable = before is not None and before.reason.startswith("ReceiverSecret")
        if condition is not None and not unusable:
            status = status.model_copy(
                update={
                    "conditions": apply_conditions(
                        status.conditions,
                        [ConditionSpec(NOTIFIED, *condition)],
                        now=now,
                        generation=parsed.metadata.generation,
                    )
                }
            )
        plan = replace(
            plan, status=status, events=plan.events + transition_events(plan.status, status)
        )
    if status.evaluation is not None and status.last_evaluated == now:
        DRIFT.publish(parsed.metadata.namespace or "", parsed.metadata.name, status)
    return plan


def receivers_of(spec: Any, config: OperatorConfig) -> tuple[Receiver, ...]:
    """The policy's receivers, else the operator-wide ones."""
    return tuple(spec.notify) or config.notify_receivers

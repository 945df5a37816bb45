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
from edgeml.api.events import Event
from edgeml.api.notify import Receiver
from edgeml.config import OperatorConfig
from edgeml.controllers import watched
from edgeml.controllers.edgemodel import access_for
from edgeml.controllers.notify import deliver, read_targets
from edgeml.datasource.errors import DataSourceError
from edgeml.datasource.probe import observe
from edgeml.datasource.s3 import ACCESS_KEY as S3_ACCESS_KEY
from edgeml.datasource.s3 import SECRET_KEY as S3_SECRET_KEY
from edgeml.drift.baseline import Baseline, BaselineFormatError, parse_baseline
from edgeml.drift.windows import WindowCounts, WindowFormatError, by_version, parse_pod_window
from edgeml.kube.apply import CreateRefusedError, create_custom
from edgeml.kube.reads import get_custom, get_secret, list_custom
from edgeml.kube.scrape import Source, scrape
from edgeml.metrics import DRIFT
from edgeml.objects.training_run import (
    POLICY_LABEL,
    TICK_ANNOTATION,
    TRIGGER_ID_LABEL,
    label_value,
)
from edgeml.plans.common import ConditionSpec, Plan, apply_conditions, transition_events
from edgeml.plans.driftpolicy import (
    NOTIFIED,
    DriftWorld,
    evaluation_due,
    model_spec_of,
    source_of,
    window_of,
)
from edgeml.plans.notifications import RETRAIN_ALERT_NAME as RETRAIN_ALERT
from edgeml.plans.notifications import Send, notified_condition
from edgeml.plans.parsing import Parsed
from edgeml.plans.retraining import RETRAINING, CreateRun, RunFacts
from edgeml.plans.triggers import (
    DATASET_CREDENTIALS_LABEL,
    DataLook,
    look_due,
    watch_problem,
    watched_dataset,
)
from edgeml.prometheus.client import PrometheusUnavailableError, window_counts
from edgeml.registry.client import RegistryUnavailableError, get_baseline
from edgeml.registry.credentials import RegistryAccess

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
    nodes = watched.nodes({str(k): str(v) for k, v in selector_.items()})
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
    versions: Sequence[str],
    model: Mapping[str, Any] | None,
    namespace: str,
    config: OperatorConfig,
) -> tuple[dict[str, Baseline], dict[str, str]]:
    """Each version's baseline, from the run the EdgeModel's status names for it, read
    with the EdgeModel's registry credentials."""
    found: dict[str, Baseline] = {}
    missing: dict[str, str] = {}
    status = (model or {}).get("status") or {}
    registry = ((model or {}).get("spec") or {}).get("registry") or {}
    uri = registry.get("trackingUri") or config.mlflow_tracking_uri
    access = RegistryAccess()
    if uri and versions:
        secret = (registry.get("credentialsSecretRef") or {}).get("name")
        access = access_for(namespace, str(secret) if secret else None)
    runs = {str(v.get("version")): v.get("runId") for v in status.get("versions") or []}
    champion = status.get("champion") or {}
    runs.setdefault(str(champion.get("version")), champion.get("runId"))
    for version in versions:
        run_id = runs.get(version)
        if not uri:
            missing[version] = "no MLflow tracking URI is configured"
        elif not run_id:
            missing[version] = "the EdgeModel lists no MLflow run for it"
        elif access.problem is not None:
            missing[version] = f"MLflow is not read for it: {access.problem[1]}"
        else:
            try:
                doc = get_baseline(uri, run_id, authorization=access.authorization)
                if doc is None:
                    missing[version] = f"run {run_id} logged no edgeml/baseline.json"
                else:
                    found[version] = parse_baseline(version, doc)
            except RegistryUnavailableError as err:
                missing[version] = f"MLflow could not be read: {err}"
            except BaselineFormatError as err:
                missing[version] = f"its baseline cannot be read: {err}"
    return found, missing


def _dataset_secret(
    namespace: str, name: str
) -> tuple[dict[str, str] | None, tuple[str, str] | None]:
    """A dataset credentials Secret's data, or (reason, message) of why it is not used."""
    secret = get_secret(namespace, name)
    if secret is None:
        return None, ("CredentialsSecretNotFound", f"Secret {name} does not exist")
    labels, data = secret
    if labels.get(DATASET_CREDENTIALS_LABEL) != "true":
        return None, (
            "CredentialsSecretNotLabelled",
            f"Secret {name} is not labelled {DATASET_CREDENTIALS_LABEL}=true, so the operator "
            "does not read it (training Jobs still mount it)",
        )
    return data, None


def look_at_dataset(
    parsed: Parsed[Any, Any], model: Mapping[str, Any] | None, now: datetime
) -> DataLook | None:
    """Look at the dataset a retrain would read, when the policy watches it and a look is
    due: its data version, or why it cannot be had (the last good one is kept)."""
    if parsed.obj is None:
        return None
    spec = parsed.obj.spec
    if spec.new_data is None:
        return None
    dataset = watched_dataset(model_spec_of(model), spec)
    if dataset is None or watch_problem(dataset) is not None:
        return None
    old = parsed.status.new_data if parsed.status is not None else None
    if not look_due(spec, old, dataset.uri, now):
        return None
    namespace = parsed.metadata.namespace or ""
    credentials: dict[str, str] | None = None
    authorization: str | None = None
    problem: tuple[str, str] | None = None
    if dataset.s3 is not None and dataset.s3.credentials_secret_ref is not None:
        ref = dataset.s3.credentials_secret_ref
        credentials, problem = _dataset_secret(namespace, ref.name)
        if credentials is not None and not (
            credentials.get(S3_ACCESS_KEY) and credentials.get(S3_SECRET_KEY)
        ):
            problem = (
                "CredentialsSecretInvalid",
                f"Secret {ref.name} needs the keys {S3_ACCESS_KEY} and {S3_SECRET_KEY}",
            )
    elif dataset.credentials_secret_ref is not None:
        key_ref = dataset.credentials_secret_ref
        data, problem = _dataset_secret(namespace, key_ref.name)
        authorization = (data or {}).get(key_ref.key)
        if data is not None and not authorization:
            problem = (
                "CredentialsSecretInvalid",
                f"Secret {key_ref.name} has no key {key_ref.key}",
            )
    if problem is not None:
        return DataLook(dataset.uri, now, error_reason=problem[0], error=problem[1])
    try:
        seen = observe(dataset, credentials, authorization)
    except DataSourceError as err:
        log.warning(
            "%s/%s: cannot look at %s: %s", namespace, parsed.metadata.name, dataset.uri, err
        )
        return DataLook(dataset.uri, now, error_reason=err.reason, error=err.message)
    return DataLook(dataset.uri, now, seen.data_version, seen.objects, seen.newest)


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
    retrains = (
        spec.action != "Alert"
        or spec.schedule is not None
        or spec.new_data is not None
        or spec.code_change
    )
    runs = read_runs(namespace, parsed.metadata.name) if retrains else ()
    look = look_at_dataset(parsed, model, datetime.now(UTC))
    world = DriftWorld(
        deployment, targets=targets, receivers=receivers, model=model, runs=runs,
        data_look=look, image=config.training_image,
    )  # fmt: skip
    if not evaluation_due(parsed, datetime.now(UTC)):
        return world
    started = time.monotonic()
    source = source_of(spec, deployment)
    seconds = int(window_of(spec).total_seconds())
    pods = [
        p
        for p in watched.inference_pods(namespace, deployment["metadata"]["name"])
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
        return replace(
            world, evaluated=True, pods_total=len(pods), source=source.type, source_error=str(err)
        )
    if pods and read == 0:
        DRIFT.failed(namespace, parsed.metadata.name, "SourceUnavailable")
        return replace(
            world, evaluated=True, pods_total=len(pods), source=source.type,
            source_error=f"none of the {len(pods)} serving pods answered {WINDOW_PATH}",
        )  # fmt: skip
    versions = sorted({w.version for _, w in windows})
    baselines, missing = _baselines(versions, model, namespace, config)
    if versions and not baselines:
        DRIFT.failed(namespace, parsed.metadata.name, "BaselineMissing")
    DRIFT.evaluated(namespace, parsed.metadata.name, time.monotonic() - started)
    return replace(
        world,
        evaluated=True,
        windows=_groups(windows),
        pods_total=len(pods),
        pods_read=read,
        baselines=baselines,
        missing_baselines=missing,
        source=source.type,
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
                if trigger in ("Manual", "Schedule", "Drift", "NewData", "CodeChange")
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

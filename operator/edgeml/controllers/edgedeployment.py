"""EdgeDeployment observe and act: nodes, pods and metrics in; pods and a Service out."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from typing import Any

from edgeml.api.edgedeployment import MetricsSource
from edgeml.config import OperatorConfig
from edgeml.controllers import watched
from edgeml.controllers.notify import deliver, read_targets
from edgeml.kube.apply import apply_object
from edgeml.kube.pods import create_pod, delete_pod
from edgeml.kube.reads import get_custom
from edgeml.kube.scrape import Source, scrape
from edgeml.plans.common import Plan
from edgeml.plans.edgedeployment import (
    CreatePod,
    DeletePod,
    DeploymentWorld,
    check_edge_deployment,
    in_analysis,
    resolve_target,
    state_from_status,
)
from edgeml.plans.notifications import Send
from edgeml.plans.parsing import Parsed
from edgeml.prometheus.client import PrometheusUnavailableError, pod_samples
from edgeml.rollout import Version, strategy_from_spec
from edgeml.rollout.fleet import observe_fleet, serving_pods, verification_candidates
from edgeml.rollout.signals import (
    Sample,
    analysis_observation,
    refused,
    samples_of,
    signals_of,
)

MAX_CANARY_SCRAPES = 100
MAX_STABLE_SCRAPES = 50
PARALLEL_POD_WRITES = 8
log = logging.getLogger(__name__)


def observe_deployment(parsed: Parsed[Any, Any], config: OperatorConfig) -> DeploymentWorld:
    """The EdgeModel, and once a target is known: the nodes, pods and canary metrics; and
    the operator-wide receivers' addresses."""
    world = _observe_rollout(parsed, config)
    if config.notify_receivers:
        world = replace(world, targets=read_targets(config.notify_receivers, config.namespace))
    return world


def _observe_rollout(parsed: Parsed[Any, Any], config: OperatorConfig) -> DeploymentWorld:
    if parsed.obj is None:
        return DeploymentWorld(None)
    namespace = parsed.metadata.namespace or ""
    spec = parsed.obj.spec
    model = get_custom("edgemodels", namespace, spec.model_ref.name)
    if model is None or check_edge_deployment(spec) is not None:
        return DeploymentWorld(model)
    target, _ = resolve_target(spec, model)
    if target is None or target.version is None:
        return DeploymentWorld(model)
    nodes = watched.nodes(spec.node_selector)
    pods = watched.inference_pods(namespace, parsed.metadata.name)
    canary = spec.strategy.canary
    analysis = canary.analysis if canary else None
    read = _reader(namespace, spec.serving.port, analysis.source if analysis else None, config)
    wanted = Version(target.version, target.sha256 or "")
    note = ""
    try:
        checked = read(verification_candidates(nodes, pods, wanted))
    except PrometheusUnavailableError as err:
        checked, note = {}, f"Metrics could not be read: {err}."
    fleet = observe_fleet(nodes, pods, [name for name, s in checked.items() if refused(s)])
    strategy = strategy_from_spec(spec)
    state = state_from_status(parsed.status)
    if strategy.analysis is None or not in_analysis(strategy, state):
        return DeploymentWorld(model, fleet)
    canary_pods = serving_pods(fleet, state.canary, MAX_CANARY_SCRAPES)
    stable_pods = serving_pods(fleet, state.stable, MAX_STABLE_SCRAPES)
    try:
        read_all = read(canary_pods + stable_pods)
    except PrometheusUnavailableError as err:
        return DeploymentWorld(model, fleet, None, f"Metrics could not be read: {err}.")
    canary_read = [s for p in canary_pods if (s := read_all.get(p["metadata"]["name"]))]
    stable_read = [s for p in stable_pods if (s := read_all.get(p["metadata"]["name"]))]
    observation = analysis_observation(
        [m.name for m in strategy.analysis.metrics],
        signals_of(canary_read),
        signals_of(stable_read) if stable_read else None,
    )
    missing = len(canary_pods) + len(stable_pods) - len(canary_read) - len(stable_read)
    if missing:
        note = f"The metrics of {missing} pods could not be read."
    return DeploymentWorld(model, fleet, observation, note)


Reader = Callable[[Sequence[Mapping[str, Any]]], dict[str, list[Sample]]]


def _reader(
    namespace: str, port: int, source: MetricsSource | None, config: OperatorConfig
) -> Reader:
    """How pods' metrics are read: their /metrics pages, or their series in Prometheus."""
    timeout = config.metrics_timeout_seconds
    if source is not None and source.type == "Prometheus" and source.prometheus is not None:
        prom = source.prometheus

        def from_prometheus(pods: Sequence[Mapping[str, Any]]) -> dict[str, list[Sample]]:
            names = [str(p["metadata"]["name"]) for p in pods]
            return pod_samples(
                prom.address, namespace, names, timeout, prom.pod_label, prom.namespace_label
            )

        return from_prometheus
    how: Source = "APIServerProxy" if source and source.type == "APIServerProxy" else "PodIP"

    def from_pods(pods: Sequence[Mapping[str, Any]]) -> dict[str, list[Sample]]:
        pages = scrape(pods, port, how, timeout)
        return {name: samples_of(text) for name, text in pages.items() if text}

    return from_pods


def _do(action: object) -> None:
    if isinstance(action, CreatePod):
        create_pod(action.manifest)
    elif isinstance(action, DeletePod):
        delete_pod(action.namespace, action.name)


def act_on_deployment(parsed: Parsed[Any, Any], plan: Plan[Any], now: datetime) -> Plan[Any]:
    """Delete and create pods as planned (in parallel: a wave can be hundreds), then apply
    the Service, and tell the receivers of a failed rollout. Creates and deletes are
    idempotent, so a rerun after a crash is safe."""
    sends = [a for a in plan.actions if isinstance(a, Send)]
    if sends:
        who = f"{parsed.metadata.namespace}/{parsed.metadata.name}"
        records = deliver(who, sends, plan.status.notifications, now)
        plan = replace(plan, status=plan.status.model_copy(update={"notifications": records}))
    actions = [a for a in plan.actions if isinstance(a, CreatePod | DeletePod)]
    if actions:
        with ThreadPoolExecutor(max_workers=PARALLEL_POD_WRITES) as pool:
            list(pool.map(_do, actions))
        log.info(
            "%s/%s: %d pods created, %d deleted",
            parsed.metadata.namespace,
            parsed.metadata.name,
            sum(isinstance(a, CreatePod) for a in actions),
            sum(isinstance(a, DeletePod) for a in actions),
        )
    for manifest in plan.objects:
        apply_object(manifest)
    return plan

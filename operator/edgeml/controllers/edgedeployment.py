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
    pods_to_read,
    reads_for,
    world_from_reads,
)
from edgeml.plans.notifications import Send
from edgeml.plans.parsing import Parsed
from edgeml.prometheus.client import PrometheusUnavailableError, pod_samples
from edgeml.rollout.signals import (
    Sample,
    samples_of,
)

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
    reads = reads_for(parsed, model, config)
    if model is None or reads is None:
        return DeploymentWorld(model)
    nodes = watched.nodes(reads.node_selector)
    pods = watched.inference_pods(namespace, parsed.metadata.name)
    canary = spec.strategy.canary
    analysis = canary.analysis if canary else None
    read = _reader(namespace, spec.serving.port, analysis.source if analysis else None, config)
    try:
        samples: dict[str, list[Sample]] | None = read(pods_to_read(reads, nodes, pods))
        error = ""
    except PrometheusUnavailableError as err:
        samples, error = None, str(err)
    return world_from_reads(reads, model, nodes, pods, samples, error)


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

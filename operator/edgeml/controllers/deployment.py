"""EdgeDeployment observe and act: nodes, pods and metrics in; pods and a Service out."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from edgeml.config import OperatorConfig
from edgeml.kube.apply import apply_object
from edgeml.kube.pods import create_pod, delete_pod
from edgeml.kube.reads import get_custom, list_nodes_raw, list_pods_raw
from edgeml.kube.scrape import Source, scrape
from edgeml.objects.inference import selector
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
from edgeml.plans.parsing import Parsed
from edgeml.rollout import Version, strategy_from_spec
from edgeml.rollout.fleet import observe_fleet, serving_pods, verification_candidates
from edgeml.rollout.signals import analysis_observation, parse_signals, refused_artifact

MAX_CANARY_SCRAPES = 100
MAX_STABLE_SCRAPES = 50
PARALLEL_POD_WRITES = 8
log = logging.getLogger(__name__)


def observe_deployment(parsed: Parsed[Any, Any], config: OperatorConfig) -> DeploymentWorld:
    """The EdgeModel, and once a target is known: the nodes, pods and canary metrics."""
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
    nodes = list_nodes_raw(",".join(f"{k}={v}" for k, v in sorted(spec.node_selector.items())))
    pods = list_pods_raw(namespace, selector(parsed.metadata.name))
    canary = spec.strategy.canary
    source = canary.analysis.source.type if canary and canary.analysis else "PodIP"
    read_source: Source = "APIServerProxy" if source == "APIServerProxy" else "PodIP"
    port, timeout = spec.serving.port, config.metrics_timeout_seconds
    wanted = Version(target.version, target.sha256 or "")
    texts = scrape(verification_candidates(nodes, pods, wanted), port, read_source, timeout)
    refused = [name for name, text in texts.items() if text and refused_artifact(text)]
    fleet = observe_fleet(nodes, pods, refused)
    strategy = strategy_from_spec(spec)
    state = state_from_status(parsed.status)
    if strategy.analysis is None or not in_analysis(strategy, state):
        return DeploymentWorld(model, fleet)
    if source == "Prometheus":
        note = "Metrics source Prometheus is not supported yet; use PodIP or APIServerProxy."
        return DeploymentWorld(model, fleet, None, note)
    canary_pods = serving_pods(fleet, state.canary, MAX_CANARY_SCRAPES)
    stable_pods = serving_pods(fleet, state.stable, MAX_STABLE_SCRAPES)
    pages = scrape(canary_pods + stable_pods, port, read_source, timeout)
    canary_pages = [t for p in canary_pods if (t := pages.get(p["metadata"]["name"]))]
    stable_pages = [t for p in stable_pods if (t := pages.get(p["metadata"]["name"]))]
    observation = analysis_observation(
        [m.name for m in strategy.analysis.metrics],
        parse_signals(canary_pages),
        parse_signals(stable_pages) if stable_pages else None,
    )
    missing = len(canary_pods) + len(stable_pods) - len(canary_pages) - len(stable_pages)
    note = f"The metrics of {missing} pods could not be read." if missing else ""
    return DeploymentWorld(model, fleet, observation, note)


def _do(action: object) -> None:
    if isinstance(action, CreatePod):
        create_pod(action.manifest)
    elif isinstance(action, DeletePod):
        delete_pod(action.namespace, action.name)


def act_on_deployment(parsed: Parsed[Any, Any], plan: Plan[Any], now: datetime) -> Plan[Any]:
    """Delete and create pods as planned (in parallel: a wave can be hundreds), then apply
    the Service. Creates and deletes are idempotent, so a rerun after a crash is safe."""
    actions = list(plan.actions)
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

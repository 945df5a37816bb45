"""The inference pod an EdgeDeployment runs on one node, and its node-local Service."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgeml.api.edgedeployment import EdgeDeploymentSpec
from edgeml.config import OperatorConfig
from edgeml.objects.meta import (
    child_name,
    container_security_context,
    labels,
    owner_reference,
    pod_security_context,
    pull_secrets,
    registry_credentials_env,
)

DEPLOYMENT_LABEL = "edgeml.io/deployment"
VERSION_LABEL = "edgeml.io/model-version"
NODE_ANNOTATION = "edgeml.io/node"
SHA256_ANNOTATION = "edgeml.io/sha256"
COMPONENT = "inference"
CACHE_PATH = "/var/cache/edgeml"
# Pods stay on a node that stops answering: an edge site that lost its uplink still serves
# its own clients, and the rollout treats the node as offline, not as failed.
STAY_ON_UNREACHABLE = [
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
]


@dataclass(frozen=True)
class ServingInputs:
    """What an inference pod is built from, gathered by the controller."""

    deployment: dict[str, Any]
    """The EdgeDeployment object (names, uid, owner reference)."""
    spec: EdgeDeploymentSpec
    registered_model: str
    """The MLflow registered model behind the EdgeModel."""
    tracking_uri: str
    credentials_secret: str | None = None
    """A Secret whose keys become the pod's environment (MLflow credentials)."""
    recommended: Mapping[int, Mapping[str, str]] = field(default_factory=dict)
    """Version → the requests its training profile recommends (EdgeModel status)."""


def pod_name(deployment: str, node: str, version: int) -> str:
    """`<deployment>-v<version>-<node digest>`: one name per node and version."""
    digest = hashlib.sha256(node.encode()).hexdigest()[:10]
    return child_name(deployment, f"v{version}-{digest}")


def service_name(deployment: str) -> str:
    """The node-local Service in front of the deployment's pods."""
    return child_name(deployment, "inference")


def selector(deployment: str) -> str:
    """The label selector of every inference pod of `deployment`."""
    return f"{DEPLOYMENT_LABEL}={deployment}"


def build_inference_pod(
    inputs: ServingInputs, node: str, version: int, sha256: str, config: OperatorConfig
) -> dict[str, Any]:
    """The pod that serves `version` on `node` (bound there by node affinity)."""
    meta = inputs.deployment["metadata"]
    name = meta["name"]
    spec = inputs.spec
    serving = spec.serving
    pod_labels = labels(
        "edgeml-serve", name, COMPONENT, **{DEPLOYMENT_LABEL: name, VERSION_LABEL: str(version)}
    )
    args = [
        "serve",
        f"--model-name={spec.model_ref.name}",
        f"--model-uri=models:/{inputs.registered_model}/{version}",
        f"--model-version={version}",
        f"--cache-dir={CACHE_PATH}",
        f"--port={serving.port}",
        f"--threads={serving.threads}",
        "--log-format=json",
    ]
    if sha256:
        args.append(f"--expected-sha256={sha256}")
    container: dict[str, Any] = {
        "name": "serve",
        "image": config.serving_image,
        "imagePullPolicy": config.serving_image_pull_policy,
        "command": ["edgeml"],
        "args": args,
        "env": [
            {"name": "MLFLOW_TRACKING_URI", "value": inputs.tracking_uri},
            {"name": "PYTHONUNBUFFERED", "value": "1"},
            *registry_credentials_env(inputs.credentials_secret),
        ],
        "ports": [{"name": "http", "containerPort": serving.port, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": "/v2/health/ready", "port": serving.port},
            "periodSeconds": 2,
            "failureThreshold": 1,
        },
        "livenessProbe": {
            "httpGet": {"path": "/v2/health/live", "port": serving.port},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "securityContext": container_security_context(),
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "model-cache", "mountPath": CACHE_PATH},
        ],
    }
    if serving.resources is not None:
        container["resources"] = serving.resources.to_json()
    elif requests := inputs.recommended.get(version):
        # Requests only: the profile measured one row at a time, and a limit from it
        # would OOM-kill a pod under a large batch; the scheduler still places by it.
        container["resources"] = {"requests": dict(requests)}
    cache: dict[str, Any]
    if config.serving_cache_host_path:
        # The node keeps verified models across pods: a new pod on a node that lost its
        # uplink starts from the cache.
        cache = {"hostPath": {"path": config.serving_cache_host_path, "type": "DirectoryOrCreate"}}
    else:
        cache = {"emptyDir": {}}
    tolerations = [t.to_json() for t in spec.tolerations] + STAY_ON_UNREACHABLE
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "model-cache", **cache}],
        "nodeSelector": dict(spec.node_selector),
        # The scheduler binds it (resources and taints checked), to this node only.
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchFields": [
                                {"key": "metadata.name", "operator": "In", "values": [node]}
                            ]
                        }
                    ]
                }
            }
        },
        "tolerations": tolerations,
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "enableServiceLinks": False,
        # `edgeml serve` never calls the Kubernetes API.
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(),
    }
    if config.image_pull_secrets:
        pod_spec["imagePullSecrets"] = pull_secrets(config)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(name, node, version),
            "namespace": meta["namespace"],
            "labels": pod_labels,
            "annotations": {NODE_ANNOTATION: node, SHA256_ANNOTATION: sha256},
            "ownerReferences": [owner_reference(inputs.deployment)],
        },
        "spec": pod_spec,
    }


def build_service(deployment: dict[str, Any], spec: EdgeDeploymentSpec) -> dict[str, Any]:
    """A Service that keeps each client on its own node's pod (internalTrafficPolicy Local)."""
    meta = deployment["metadata"]
    name = meta["name"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": service_name(name),
            "namespace": meta["namespace"],
            "labels": labels("edgeml-serve", name, COMPONENT, **{DEPLOYMENT_LABEL: name}),
            "ownerReferences": [owner_reference(deployment)],
        },
        "spec": {
            "selector": {DEPLOYMENT_LABEL: name},
            "internalTrafficPolicy": "Local",
            "ports": [
                {"name": "http", "port": spec.serving.port, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }

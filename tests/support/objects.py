"""Valid objects of the four kinds, and a deep-merge to derive invalid ones from them."""

from __future__ import annotations

import copy
import os
import uuid
from typing import Any

API_VERSION = "edgeml.io/v1alpha1"
# Process nodes ignore images; on kind, name an image holding Python and edgeml.
TEST_IMAGE = os.environ.get("EDGEML_TEST_IMAGE", "ignored")
PLURALS = {
    "EdgeModel": "edgemodels",
    "TrainingRun": "trainingruns",
    "EdgeDeployment": "edgedeployments",
    "DriftPolicy": "driftpolicies",
}

DELETE = object()


def merge(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """A copy of `base` with `change` merged in; DELETE removes a key, `{}` empties one."""
    out = copy.deepcopy(base)
    for key, value in change.items():
        if value is DELETE:
            out.pop(key, None)
        elif isinstance(value, dict) and value and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def edge_model(name: str = "vibration", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "EdgeModel",
        "metadata": {"name": name},
        "spec": merge(
            {
                "training": {
                    "dataset": {"uri": "file:///data/vibration.csv", "target": "label"},
                    "estimator": {
                        "class": "sklearn.ensemble.RandomForestClassifier",
                        "params": {"n_estimators": 50},
                    },
                },
                "promotion": {"mode": "Auto", "gates": [{"metric": "f1", "min": 0.8}]},
            },
            spec,
        ),
    }


def hermetic_edge_model(name: str = "vibration", **spec: Any) -> dict[str, Any]:
    """An EdgeModel with a registered model of its own: the MLflow server outlives tests."""
    spec.setdefault("registry", {"registeredModel": f"{name}-{uuid.uuid4().hex[:8]}"})
    return edge_model(name, **spec)


def training_run(
    name: str = "vibration-1", model: str = "vibration", **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingRun",
        "metadata": {"name": name},
        "spec": merge({"modelRef": {"name": model}, "trigger": "Manual"}, spec),
    }


def edge_deployment(
    name: str = "vibration-edge", model: str = "vibration", **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "EdgeDeployment",
        "metadata": {"name": name},
        "spec": merge(
            {
                "modelRef": {"name": model, "alias": "champion"},
                "nodeSelector": {"node-role.kubernetes.io/edge": "true"},
                "tolerations": [
                    {
                        "key": "node-role.kubernetes.io/edge",
                        "operator": "Exists",
                        "effect": "NoSchedule",
                    }
                ],
                "strategy": {
                    "canary": {
                        "steps": [
                            {"nodes": "10%"},
                            {"analysis": {"duration": "1m"}},
                            {"nodes": "50%"},
                            {"pause": {"duration": "30s"}},
                            {"nodes": "100%"},
                        ],
                        "analysis": {
                            "interval": "15s",
                            "metrics": [
                                {"name": "error-rate", "max": 0.01},
                                {"name": "prediction-shift", "max": 0.2},
                            ],
                        },
                    }
                },
            },
            spec,
        ),
    }


def drift_policy(
    name: str = "vibration-drift", deployment: str = "vibration-edge", **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "DriftPolicy",
        "metadata": {"name": name},
        "spec": merge(
            {
                "deploymentRef": {"name": deployment},
                "dataDrift": {"method": "psi", "threshold": 0.2, "window": "15m"},
                "action": "Alert",
            },
            spec,
        ),
    }


BUILDERS = {
    "EdgeModel": edge_model,
    "TrainingRun": training_run,
    "EdgeDeployment": edge_deployment,
    "DriftPolicy": drift_policy,
}

"""The edgeml.io/v1alpha1 API: pydantic models of the four kinds, the source of the CRDs."""

from edgeml.api.common import API_VERSION, GROUP, VERSION
from edgeml.api.kinds import KINDS, DriftPolicy, EdgeDeployment, EdgeModel, KindInfo, TrainingRun

__all__ = [
    "API_VERSION",
    "GROUP",
    "KINDS",
    "VERSION",
    "DriftPolicy",
    "EdgeDeployment",
    "EdgeModel",
    "KindInfo",
    "TrainingRun",
]

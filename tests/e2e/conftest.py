"""Fixtures the drift and retraining e2e tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from support.drift import Clients
from support.webhooks import Receiver, receiver


@pytest.fixture
def webhook() -> Iterator[Receiver]:
    """An Alertmanager-style receiver on loopback."""
    with receiver() as r:
        yield r


@pytest.fixture
def clients(core: client.CoreV1Api, namespace: str) -> Iterator[Clients]:
    """Edge clients of EdgeDeployment vibration-edge (model vibration) in the namespace."""
    c = Clients(core, namespace, "vibration-edge", "vibration")
    yield c
    c.close()

"""Kubernetes Events about our objects (core/v1, the API `kubectl describe` shows)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from edgeml.api.events import Event
from edgeml.kube.client import CLUSTER_ERRORS, api_client, path_of

COMPONENT = "edgeml-operator"
MAX_MESSAGE = 1024
log = logging.getLogger(__name__)


def _reference(body: Mapping[str, Any]) -> dict[str, Any]:
    meta = body["metadata"]
    return {
        "apiVersion": body["apiVersion"],
        "kind": body["kind"],
        "name": meta["name"],
        "namespace": meta.get("namespace"),
        "uid": meta.get("uid"),
        "resourceVersion": meta.get("resourceVersion"),
    }


def post_events(body: Mapping[str, Any], events: list[Event]) -> None:
    """Post each event about `body`; a failure to post is logged, never raised."""
    if not events:
        return
    api = api_client()
    own = _reference(body)
    now = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    for event in events:
        ref = dict(event.regarding) if event.regarding else own
        manifest = {
            "metadata": {"generateName": f"{ref['name']}.", "namespace": ref["namespace"]},
            "involvedObject": ref,
            "type": event.type,
            "reason": event.reason,
            "message": event.message[:MAX_MESSAGE],
            "source": {"component": COMPONENT},
            "reportingComponent": f"edgeml.io/{COMPONENT}",
            "reportingInstance": socket.gethostname(),
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            api.request("POST", path_of("api", "v1", "namespaces", ref["namespace"], "events"),
                        body=manifest)  # fmt: skip
        except CLUSTER_ERRORS as err:
            log.warning(
                "could not post event %s on %s/%s: %s", event.reason, ref["namespace"],
                ref["name"], err,
            )  # fmt: skip

"""API clients: in-cluster when running in a pod, else the kubeconfig."""

from __future__ import annotations

import functools
import os

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException


@functools.cache
def api_client() -> client.ApiClient:
    """One shared API client for the process."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except ConfigException:
        # KUBECONFIG read now, not when the kubernetes package was imported.
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))  # type: ignore[no-untyped-call]
    return client.ApiClient()


def custom_objects() -> client.CustomObjectsApi:
    """The client for edgeml.io objects."""
    return client.CustomObjectsApi(api_client())

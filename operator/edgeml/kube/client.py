"""API clients: in-cluster when running in a pod, else the kubeconfig."""

from __future__ import annotations

import functools
import os

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import HTTPError

IN_CLUSTER_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
_chosen: dict[str, str | None] = {"kubeconfig": None, "context": None}


def use_kubeconfig(path: str | None, context: str | None) -> None:
    """The kubeconfig file and context of this process (the CLI's --kubeconfig and
    --context); call before the first API call."""
    _chosen.update(kubeconfig=path, context=context)
    api_client.cache_clear()


@functools.cache
def api_client() -> client.ApiClient:
    """One shared API client for the process."""
    path, context = _chosen["kubeconfig"], _chosen["context"]
    if path is None and context is None:
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
            return client.ApiClient()
        except ConfigException:
            pass
    # KUBECONFIG read now, not when the kubernetes package was imported.
    config.load_kube_config(config_file=path or os.environ.get("KUBECONFIG"), context=context)  # type: ignore[no-untyped-call]
    return client.ApiClient()


def current_namespace() -> str:
    """The namespace a person means when they give none: their kube context's, else the
    pod's own (in a cluster), else `default`."""
    path, context = _chosen["kubeconfig"], _chosen["context"]
    try:
        contexts, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=path or os.environ.get("KUBECONFIG")
        )
        chosen = next((c for c in contexts if c["name"] == context), active) if context else active
        namespace = (chosen or {}).get("context", {}).get("namespace")
        if namespace:
            return str(namespace)
    except (ConfigException, OSError):
        if os.path.exists(IN_CLUSTER_NAMESPACE):
            with open(IN_CLUSTER_NAMESPACE) as f:
                return f.read().strip() or "default"
    return "default"


def custom_objects() -> client.CustomObjectsApi:
    """The client for edgeml.io objects."""
    return client.CustomObjectsApi(api_client())


CLUSTER_ERRORS: tuple[type[Exception], ...] = (ConfigException, ApiException, HTTPError, OSError)
"""What talking to a cluster can raise that is the cluster's or the kubeconfig's doing."""


def explain(err: Exception) -> str:
    """One line saying what went wrong talking to the cluster (for the CLI)."""
    if isinstance(err, ConfigException):
        return f"no usable kubeconfig: {err}"
    if isinstance(err, ApiException):
        return f"the API server answered {err.status} {err.reason}"
    return f"the API server cannot be reached: {err}"

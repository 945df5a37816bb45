"""kopf's credentials: the ones our own client uses, so both reach the same API server
the same way (kopf's built-in service-account login names `kubernetes.default.svc`, which
needs cluster DNS; client-go, and we, use KUBERNETES_SERVICE_HOST)."""

from __future__ import annotations

import kopf

from edgeml.kube.client import api_client


def connection_info() -> kopf.ConnectionInfo:
    """What kopf connects with; called at start and again whenever kopf gets a 401."""
    conn, token, plugin = api_client().credentials()
    cert = plugin.cert_data if plugin and plugin.cert_data else conn.cert_data
    key = plugin.key_data if plugin and plugin.key_data else conn.key_data
    return kopf.ConnectionInfo(
        server=conn.server,
        ca_path=None if conn.ca_data else conn.ca_file,
        ca_data=conn.ca_data,
        insecure=conn.insecure or None,
        scheme="Bearer" if token else None,
        token=token,
        certificate_path=None if cert else conn.cert_file,
        certificate_data=cert,
        private_key_path=None if key else conn.key_file,
        private_key_data=key,
        default_namespace=conn.namespace,
        expiration=plugin.expires if plugin else None,
    )

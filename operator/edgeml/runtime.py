"""Running the operator: kopf's settings, the metrics endpoint, and the event loop."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any

import kopf
from prometheus_client import start_http_server

from edgeml.allocator import DEFAULT_TRIM_SECONDS, start_trimming
from edgeml.api.common import GROUP

FINALIZER = f"{GROUP}/finalizer"
PEERING_NAME = "edgeml"
FIELD_MANAGER = "edgeml-operator"


@dataclass(frozen=True)
class RuntimeOptions:
    """How this operator process runs; from `edgeml run` flags."""

    namespaces: tuple[str, ...] = ()
    standalone: bool = False
    peering: str = PEERING_NAME
    """The peering object's name: a ClusterKopfPeering when watching every namespace, else
    a KopfPeering in each watched one (the chart names it after the release)."""
    liveness: str = "http://0.0.0.0:8080/healthz"
    metrics_address: str = "0.0.0.0"
    metrics_port: int = 9090
    log_format: str = "json"
    verbose: bool = False
    lease: tuple[str, str, str] | None = None
    """(namespace, name, identity) of the Lease that elects the active replica; None runs
    without leader election (kopf's peering, or standalone)."""
    malloc_trim_seconds: float = DEFAULT_TRIM_SECONDS
    """How often freed memory is given back to the system (allocator.py); 0: never."""


class QuietSuccess(logging.Filter):
    """Drop kopf's "Handler '...' succeeded." records (and its timers' and daemons').

    Every pod and node event runs a handler, so at 1,000 nodes these were most of the
    log; dropped on the logger, they can never reach kopf's Event poster either. Our
    reconciles log what they did; failures and retries are still logged by kopf.
    """

    SUCCESS = re.compile(r"^(Handler|Timer|Daemon) '[^']*' succeeded\.$")

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.SUCCESS.match(record.getMessage())


def configure(settings: kopf.OperatorSettings, options: RuntimeOptions) -> None:
    """Apply our choices to kopf's settings."""
    # Progress and diff-base in annotations under our own prefix: the structural schema
    # prunes unknown status fields, and annotations leave status wholly ours.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.persistence.finalizer = FINALIZER
    settings.peering.name = options.peering
    settings.peering.standalone = options.standalone
    settings.peering.clusterwide = not options.namespaces
    settings.posting.level = logging.INFO
    settings.posting.reporting_component = "edgeml-operator"
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.batching.error_delays = (1, 2, 5, 10, 30, 60)
    settings.execution.max_workers = 8
    objects = logging.getLogger("kopf.objects")
    if not any(isinstance(f, QuietSuccess) for f in objects.filters):
        objects.addFilter(QuietSuccess())


def run(options: RuntimeOptions) -> int:
    """Run the operator until interrupted; return the exit code."""
    import edgeml.controllers.handlers  # noqa: F401  (importing registers the handlers)

    kopf.configure(
        verbose=options.verbose,
        log_format=kopf.LogFormat.JSON if options.log_format == "json" else kopf.LogFormat.FULL,
    )

    @kopf.on.startup()
    def _startup(settings: kopf.OperatorSettings, logger: Any, **_: Any) -> None:
        configure(settings, options)
        start_http_server(options.metrics_port, addr=options.metrics_address)
        scope = ",".join(options.namespaces) if options.namespaces else "all namespaces"
        where = f"{options.metrics_address}:{options.metrics_port}"
        logger.info(f"edgeml operator starting: watching {scope}, metrics on {where}")

    async def operate() -> None:
        await kopf.operator(
            clusterwide=not options.namespaces,
            namespaces=list(options.namespaces),
            standalone=options.standalone,
            # Naming the peering makes it mandatory; standalone means there is none.
            peering_name=None if options.standalone else options.peering,
            liveness_endpoint=options.liveness,
        )

    start_trimming(options.malloc_trim_seconds)
    if options.lease is None:
        asyncio.run(operate())
        return 0
    from edgeml.election import Elector, run_elected
    from edgeml.kube.kubeconfig import own_service_account

    namespace, name, identity = options.lease

    def owner() -> tuple[str, str] | None:
        # The Lease belongs to the operator's ServiceAccount, so it goes when the install
        # goes (an owner must be in the dependent's namespace, or the collector deletes
        # the Lease at once).
        account = own_service_account()
        return (account[1], account[2]) if account is not None and account[0] == namespace else None

    elector = Elector(namespace, name, identity, owner=owner)
    asyncio.run(run_elected(elector, options.liveness, operate))
    return 0

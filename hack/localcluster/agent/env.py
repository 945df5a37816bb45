"""A container's environment and command, resolved the way kubelet does (pure).

The API lookups (ConfigMaps, Secrets) come in through `Sources`, so every rule
here is testable without a cluster.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from localcluster.agent import resources

Obj = dict[str, Any]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class ConfigError(Exception):
    """The container cannot be configured (kubelet's CreateContainerConfigError)."""


class Sources(Protocol):
    """Where ConfigMaps and Secrets come from; None means the object does not exist."""

    def config_map(self, namespace: str, name: str) -> Obj | None:
        """The ConfigMap, or None if it does not exist."""
        ...

    def secret(self, namespace: str, name: str) -> Obj | None:
        """The Secret, or None if it does not exist."""
        ...


@dataclass(frozen=True)
class PodAddresses:
    """The addresses the downward API can expose."""

    pod_ip: str
    host_ip: str


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """Expand `$(VAR)` references like Kubernetes: `$$` escapes, unknown names stay as written."""
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            end = text.find(")", i + 2)
            if end == -1:
                out.append("$(")
                i += 2
                continue
            name = text[i + 2 : end]
            value = lookup(name)
            out.append(value if value is not None else f"$({name})")
            i = end + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out)


def service_env(port: int, host: str = "127.0.0.1") -> dict[str, str]:
    """The `KUBERNETES_*` variables kubelet gives every pod, pointing at the forwarded API port."""
    prefix = f"KUBERNETES_PORT_{port}_TCP"
    return {
        "KUBERNETES_SERVICE_HOST": host,
        "KUBERNETES_SERVICE_PORT": str(port),
        "KUBERNETES_SERVICE_PORT_HTTPS": str(port),
        "KUBERNETES_PORT": f"tcp://{host}:{port}",
        prefix: f"tcp://{host}:{port}",
        f"{prefix}_PROTO": "tcp",
        f"{prefix}_PORT": str(port),
        f"{prefix}_ADDR": host,
    }


def field_value(pod: Obj, path: str, addresses: PodAddresses, *, for_volume: bool = False) -> str:
    """The value of a downward API `fieldRef` path for this pod."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": addresses.pod_ip,
        "status.podIPs": addresses.pod_ip,
        "status.hostIP": addresses.host_ip,
        "status.hostIPs": addresses.host_ip,
    }
    if path in simple:
        return str(simple[path])
    m = _SUBSCRIPT.match(path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    if for_volume and path in ("metadata.labels", "metadata.annotations"):
        return format_map(meta.get(path.split(".")[1]) or {})
    raise ConfigError(f"unsupported fieldRef fieldPath {path!r}")


def format_map(values: Mapping[str, str]) -> str:
    """Labels or annotations as a downward API file: sorted `key="value"` lines."""
    return "\n".join(f"{k}={json.dumps(v)}" for k, v in sorted(values.items()))


def find_container(pod: Obj, name: str) -> Obj | None:
    """The container (or init container) of the pod with this name."""
    spec = pod.get("spec") or {}
    for c in list(spec.get("containers") or []) + list(spec.get("initContainers") or []):
        if c.get("name") == name:
            return dict(c)
    return None


def _key_value(sources: Sources, namespace: str, ref: Obj, kind: str) -> str | None:
    """A configMapKeyRef/secretKeyRef value; None when optional and missing."""
    name = ref.get("name", "")
    key = ref.get("key", "")
    optional = bool(ref.get("optional"))
    if kind == "configmap":
        obj = sources.config_map(namespace, name)
    else:
        obj = sources.secret(namespace, name)
    if obj is None:
        if optional:
            return None
        raise ConfigError(f'{kind} "{name}" not found')
    data = obj.get("data") or {}
    if key in data:
        return str(data[key]) if kind == "configmap" else _b64(data[key])
    if kind == "configmap" and key in (obj.get("binaryData") or {}):
        return _b64(obj["binaryData"][key])
    if optional:
        return None
    what = "ConfigMap" if kind == "configmap" else "Secret"
    raise ConfigError(f"couldn't find key {key} in {what} {namespace}/{name}")


def _b64(value: str) -> str:
    return base64.b64decode(value).decode(errors="replace")


def container_env(
    pod: Obj,
    container: Obj,
    sources: Sources,
    addresses: PodAddresses,
    kube_env: Mapping[str, str],
) -> dict[str, str]:
    """The container's environment from its spec: envFrom, then env, then the service variables.

    Same order and expansion rules as kubelet: each `env` value may reference
    variables defined before it (and the service variables).
    """
    namespace = (pod.get("metadata") or {}).get("namespace", "default")
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            ref, kind = source["configMapRef"], "configmap"
            obj = sources.config_map(namespace, ref.get("name", ""))
        elif "secretRef" in source:
            ref, kind = source["secretRef"], "secret"
            obj = sources.secret(namespace, ref.get("name", ""))
        else:
            raise ConfigError(f"unsupported envFrom source {sorted(source)}")
        if obj is None:
            if ref.get("optional"):
                continue
            raise ConfigError(f'{kind} "{ref.get("name", "")}" not found')
        for key, raw in (obj.get("data") or {}).items():
            name = prefix + key
            if _ENV_NAME.match(name):  # kubelet skips invalid names (with an event)
                env[name] = str(raw) if kind == "configmap" else _b64(raw)

    def lookup(name: str) -> str | None:
        return env.get(name, kube_env.get(name))

    for var in container.get("env") or []:
        name = var["name"]
        value_from = var.get("valueFrom")
        if value_from is None:
            env[name] = expand(str(var.get("value", "")), lookup)
            continue
        value: str | None
        if "fieldRef" in value_from:
            value = field_value(pod, value_from["fieldRef"].get("fieldPath", ""), addresses)
        elif "resourceFieldRef" in value_from:
            ref = value_from["resourceFieldRef"]
            target = find_container(pod, ref.get("containerName") or container.get("name", ""))
            try:
                value = resources.resource_field_value(target, ref)
            except resources.QuantityError as e:
                raise ConfigError(str(e)) from e
        elif "configMapKeyRef" in value_from:
            value = _key_value(sources, namespace, value_from["configMapKeyRef"], "configmap")
        elif "secretKeyRef" in value_from:
            value = _key_value(sources, namespace, value_from["secretKeyRef"], "secret")
        else:
            raise ConfigError(f"unsupported valueFrom for {name}: {sorted(value_from)}")
        if value is not None:
            env[name] = value
    for name, value in kube_env.items():
        env.setdefault(name, value)
    return env


def process_env(
    spec_env: Mapping[str, str], *, python_bin_dir: str, home: str, hostname: str
) -> dict[str, str]:
    """What a container runtime adds: PATH (the project venv first), HOME and HOSTNAME."""
    env = dict(spec_env)
    env.setdefault("PATH", f"{python_bin_dir}:{DEFAULT_PATH}" if python_bin_dir else DEFAULT_PATH)
    env.setdefault("HOME", home)
    env.setdefault("HOSTNAME", hostname)
    return env


def command_line(container: Obj, env: Mapping[str, str]) -> list[str]:
    """The argv to run: `command` + `args` with `$(VAR)` expanded; no command is an error."""
    command = [str(x) for x in container.get("command") or []]
    if not command:
        raise ConfigError(
            "process nodes need an explicit command: the image entrypoint is not known"
        )
    args = [str(x) for x in container.get("args") or []]
    return [expand(part, env.get) for part in command + args]

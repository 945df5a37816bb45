"""Pod volumes as directories in the pod dir (the launcher bind-mounts them).

`render` computes a volume's files from the API objects (pure, given `Sources`);
`sync_dir` writes them, atomically per file, so a refresh (a rotated token, an
edited ConfigMap) shows through a directory mount of a running container.
"""

from __future__ import annotations

import base64
import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from localcluster.agent import env, resources

Obj = dict[str, Any]

DIR_KINDS = ("emptyDir", "hostPath")
FILE_KINDS = ("configMap", "secret", "downwardAPI", "projected")
DEFAULT_MODE = 0o644
DEFAULT_TOKEN_SECONDS = 3600


class VolumeError(Exception):
    """A volume that cannot be set up; `reason` is the container's waiting reason."""

    reason = "ContainerCreating"


class UnsupportedVolumeError(VolumeError):
    """A kind of volume process nodes do not have (PVCs, CSI...): a config error, not retried."""

    reason = "CreateContainerConfigError"


class VolumeNotReadyError(VolumeError):
    """A source that is missing (a ConfigMap...): retried, like kubelet's FailedMount."""


class Sources(env.Sources, Protocol):
    """ConfigMaps and Secrets, plus service account tokens from the TokenRequest API."""

    def service_account_token(
        self, namespace: str, service_account: str, audience: str, expiration: int
    ) -> str:
        """A token for the pod's service account, bound to the pod."""
        ...


@dataclass(frozen=True)
class File:
    """One file of a rendered volume."""

    data: bytes
    mode: int = DEFAULT_MODE


def volume_kind(volume: Obj) -> str:
    """The kind of a volume: the one key besides `name` (emptyDir, configMap...)."""
    kinds = [k for k in volume if k != "name"]
    return kinds[0] if kinds else "emptyDir"


def check_supported(pod: Obj) -> None:
    """Raise UnsupportedVolumeError for the first volume process nodes cannot provide."""
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        kind = volume_kind(volume)
        if kind not in DIR_KINDS + FILE_KINDS:
            raise UnsupportedVolumeError(
                f'volume "{volume.get("name")}": {kind} volumes are not supported on process nodes'
            )
        for source in (volume.get("projected") or {}).get("sources") or []:
            for sub in source:
                if sub not in ("configMap", "secret", "downwardAPI", "serviceAccountToken"):
                    raise UnsupportedVolumeError(
                        f'volume "{volume.get("name")}": projected {sub} sources are not supported'
                        " on process nodes"
                    )


def _safe_rel(path: str) -> str:
    parts = Path(path).parts
    if not path or Path(path).is_absolute() or ".." in parts:
        raise UnsupportedVolumeError(f"invalid volume item path {path!r}")
    return path


def _keyed(
    data: dict[str, bytes],
    items: list[Obj] | None,
    default_mode: int,
    *,
    optional: bool,
    what: str,
) -> dict[str, File]:
    if not items:
        return {k: File(v, default_mode) for k, v in data.items()}
    out: dict[str, File] = {}
    for item in items:
        key = item.get("key", "")
        if key not in data:
            if optional:
                continue
            raise VolumeNotReadyError(f"{what} references non-existent config key: {key}")
        out[_safe_rel(item.get("path") or key)] = File(
            data[key], int(item.get("mode") or default_mode)
        )
    return out


def _config_map_files(
    ref: Obj, namespace: str, sources: env.Sources, default_mode: int
) -> dict[str, File]:
    obj = sources.config_map(namespace, ref.get("name", ""))
    if obj is None:
        if ref.get("optional"):
            return {}
        raise VolumeNotReadyError(f'configmap "{ref.get("name", "")}" not found')
    data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return _keyed(
        data, ref.get("items"), default_mode, optional=bool(ref.get("optional")), what="configmap"
    )


def _secret_files(
    ref: Obj, name: str, namespace: str, sources: env.Sources, default_mode: int
) -> dict[str, File]:
    obj = sources.secret(namespace, name)
    if obj is None:
        if ref.get("optional"):
            return {}
        raise VolumeNotReadyError(f'secret "{name}" not found')
    data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    return _keyed(
        data, ref.get("items"), default_mode, optional=bool(ref.get("optional")), what="secret"
    )


def _downward_files(
    items: list[Obj], pod: Obj, addresses: env.PodAddresses, default_mode: int
) -> dict[str, File]:
    out: dict[str, File] = {}
    for item in items:
        if "fieldRef" in item:
            value = env.field_value(
                pod, item["fieldRef"].get("fieldPath", ""), addresses, for_volume=True
            )
        elif "resourceFieldRef" in item:
            ref = item["resourceFieldRef"]
            value = resources.resource_field_value(
                env.find_container(pod, ref.get("containerName", "")), ref
            )
        else:
            raise UnsupportedVolumeError(f"unsupported downwardAPI item {sorted(item)}")
        out[_safe_rel(item.get("path", ""))] = File(
            value.encode(), int(item.get("mode") or default_mode)
        )
    return out


def render(volume: Obj, pod: Obj, sources: Sources, addresses: env.PodAddresses) -> dict[str, File]:
    """The files of a configMap, secret, downwardAPI or projected volume."""
    namespace = (pod.get("metadata") or {}).get("namespace", "default")
    kind = volume_kind(volume)
    body: Obj = volume.get(kind) or {}
    mode = int(body.get("defaultMode") or DEFAULT_MODE)
    try:
        if kind == "configMap":
            return _config_map_files(body, namespace, sources, mode)
        if kind == "secret":
            return _secret_files(body, body.get("secretName", ""), namespace, sources, mode)
        if kind == "downwardAPI":
            return _downward_files(body.get("items") or [], pod, addresses, mode)
        if kind == "projected":
            return _projected(body, pod, sources, addresses, mode)
    except (env.ConfigError, resources.QuantityError) as e:
        raise UnsupportedVolumeError(f'volume "{volume.get("name")}": {e}') from e
    raise UnsupportedVolumeError(f"{kind} volumes have no files")


def _projected(
    body: Obj, pod: Obj, sources: Sources, addresses: env.PodAddresses, mode: int
) -> dict[str, File]:
    namespace = (pod.get("metadata") or {}).get("namespace", "default")
    out: dict[str, File] = {}
    for source in body.get("sources") or []:
        if "configMap" in source:
            out.update(_config_map_files(source["configMap"], namespace, sources, mode))
        elif "secret" in source:
            ref = source["secret"]
            out.update(_secret_files(ref, ref.get("name", ""), namespace, sources, mode))
        elif "downwardAPI" in source:
            out.update(
                _downward_files(source["downwardAPI"].get("items") or [], pod, addresses, mode)
            )
        elif "serviceAccountToken" in source:
            sat = source["serviceAccountToken"]
            account = (pod.get("spec") or {}).get("serviceAccountName") or "default"
            token = sources.service_account_token(
                namespace,
                account,
                sat.get("audience") or "",
                int(sat.get("expirationSeconds") or DEFAULT_TOKEN_SECONDS),
            )
            out[_safe_rel(sat.get("path", "token"))] = File(token.encode(), mode)
    return out


def prepare_host_path(volume: Obj) -> str:
    """Check (or create) a hostPath per its `type`; return the path."""
    hp = volume.get("hostPath") or {}
    path = Path(hp.get("path", ""))
    kind = hp.get("type") or ""
    if not path.is_absolute():
        raise UnsupportedVolumeError(f'volume "{volume.get("name")}": hostPath must be absolute')
    if kind == "DirectoryOrCreate":
        path.mkdir(parents=True, exist_ok=True)
    elif kind == "FileOrCreate":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
    checks = {
        "Directory": path.is_dir,
        "File": path.is_file,
        "Socket": path.is_socket,
        "CharDevice": path.is_char_device,
        "BlockDevice": path.is_block_device,
    }
    if kind in checks and not checks[kind]():
        raise VolumeNotReadyError(f"hostPath type check failed: {path} is not a {kind}")
    return str(path)


def sync_dir(root: Path, files: dict[str, File]) -> bool:
    """Make `root` hold exactly `files`, replacing changed ones atomically; True if any changed."""
    root.mkdir(parents=True, exist_ok=True)
    changed = False
    for rel, f in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            same = target.read_bytes() == f.data and stat.S_IMODE(target.stat().st_mode) == f.mode
        except OSError:
            same = False
        if same:
            continue
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(f.data)
        os.chmod(tmp, f.mode)
        os.replace(tmp, target)
        changed = True
    wanted = {root / rel for rel in files}
    for dirpath, _dirnames, filenames in os.walk(root, topdown=False):
        d = Path(dirpath)
        for name in filenames:
            if d / name not in wanted:
                (d / name).unlink()
                changed = True
        if d != root:
            with contextlib.suppress(OSError):
                d.rmdir()  # only succeeds when empty
    return changed

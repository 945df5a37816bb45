"""The real-kubelet tier's sandbox image, made here because no registry is reachable.

containerd runs every pod's sandbox from an image (upstream: registry.k8s.io/pause).
We build the same few lines of C (hack/build/pause/pause.c) statically and wrap the
binary in a one-layer image archive that `ctr images import` reads (the docker-archive
layout: manifest.json, the image config, one layer tar).
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

from localcluster.settings import BUILD_DIR, Settings

PAUSE_IMAGE = "localhost/edgeml/pause:3.10"
"""The sandbox image's reference, as containerd's `sandbox_image` names it."""

PAUSE_SOURCE = BUILD_DIR / "pause" / "pause.c"


class PauseImageError(RuntimeError):
    """The sandbox image could not be built; the message says what to install."""


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _layer(binary: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("pause")
        info.size, info.mode, info.mtime = len(binary), 0o755, 0
        tar.addfile(info, io.BytesIO(binary))
    return buf.getvalue()


def image_archive(
    binary: bytes, reference: str, arch: str = "amd64", user: str = "65535:65535"
) -> bytes:
    """A docker-archive tar of one layer holding `binary` as /pause, its entrypoint,
    run as `user` (the upstream pause image's nobody-like 65535 by default)."""
    layer = _layer(binary)
    layer_id = _digest(layer)
    config = json.dumps(
        {
            "architecture": arch,
            "os": "linux",
            "config": {"Entrypoint": ["/pause"], "User": user},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_id}"]},
        },
        sort_keys=True,
    ).encode()
    config_name = f"{_digest(config)}.json"
    manifest = json.dumps(
        [{"Config": config_name, "RepoTags": [reference], "Layers": [f"{layer_id}/layer.tar"]}]
    ).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (
            (f"{layer_id}/layer.tar", layer),
            (config_name, config),
            ("manifest.json", manifest),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def ensure_pause_image(settings: Settings) -> Path:
    """Build the sandbox image's archive once per source digest; return its path."""
    source = PAUSE_SOURCE.read_bytes()
    out = settings.bin_dir / f"pause-{_digest(source)[:12]}" / "pause-image.tar"
    if out.exists():
        return out
    gcc = shutil.which("gcc")
    if gcc is None:
        raise PauseImageError(
            "gcc is needed to build the real-kubelet tier's sandbox image: apt-get install gcc "
            "libc6-dev"
        )
    partial = out.parent.with_name(out.parent.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    binary = partial / "pause"
    proc = subprocess.run(
        [gcc, "-static", "-Os", "-s", "-o", str(binary), str(PAUSE_SOURCE)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise PauseImageError(
            f"building the sandbox binary failed: {proc.stderr.strip()}\n"
            "a static build needs libc6-dev (apt-get install libc6-dev)"
        )
    (partial / out.name).write_bytes(image_archive(binary.read_bytes(), PAUSE_IMAGE))
    shutil.rmtree(out.parent, ignore_errors=True)
    partial.rename(out.parent)
    return out

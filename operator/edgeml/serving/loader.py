"""From a model source to verified model bytes: cache first, MLflow (in a child) second.

The rule: no bytes reach onnxruntime unless their sha256 is the expected one, computed
here over the very bytes that will be loaded. The outcome is a value: `Verified`,
`Mismatch` (final: the server stays unready) or `Unavailable` (retried with backoff).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import edgeml
from edgeml.serving.cache import CachedModel, ModelCache, is_sha256, sha256_hex

log = logging.getLogger("edgeml.serve.loader")

FETCH_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class ModelSource:
    """Where the model comes from, and the sha256 it must have (if known)."""

    uri: str | None = None
    path: Path | None = None
    baseline_path: Path | None = None
    expected_sha256: str | None = None


@dataclass(frozen=True)
class Verified:
    """Model bytes whose sha256 was checked, with their baseline."""

    model_bytes: bytes
    sha256: str
    baseline: dict[str, Any] | None
    version: str | None
    from_cache: bool


@dataclass(frozen=True)
class Mismatch:
    """The artifact is not the expected one; it was not loaded."""

    expected: str
    actual: str

    @property
    def reason(self) -> str:
        """The sentence for logs and the ready endpoint."""
        return (
            f"the model artifact's sha256 is {self.actual}, not the expected {self.expected}; "
            "refusing to load it"
        )


@dataclass(frozen=True)
class Unavailable:
    """Nothing to load yet (MLflow down, no sha256 tag yet); try again later."""

    reason: str


Outcome = Verified | Mismatch | Unavailable


def verify(model_bytes: bytes, expected: str | None) -> Mismatch | str:
    """The bytes' sha256 if it is the expected one (or nothing is expected), else Mismatch."""
    actual = sha256_hex(model_bytes)
    if expected is not None and actual != expected:
        return Mismatch(expected, actual)
    return actual


def _from_cache(cache: ModelCache, sha256: str) -> Verified | None:
    cached: CachedModel | None = cache.read(sha256)
    if cached is None:
        return None
    checked = verify(cached.model_bytes, sha256)
    if isinstance(checked, Mismatch):
        log.warning("cache entry %s is corrupt (%s); removing it", sha256, checked.actual)
        cache.remove(sha256)
        return None
    version = cached.source.get("version")
    return Verified(
        cached.model_bytes, sha256, cached.baseline, str(version) if version else None, True
    )


def load_local(source: ModelSource) -> Outcome:
    """A model file on disk (and its baseline.json beside it, or --baseline-path)."""
    assert source.path is not None
    try:
        model_bytes = source.path.read_bytes()
    except OSError as exc:
        return Unavailable(f"cannot read {source.path}: {exc.strerror}")
    checked = verify(model_bytes, source.expected_sha256)
    if isinstance(checked, Mismatch):
        return checked
    baseline_path = source.baseline_path or source.path.with_name("baseline.json")
    baseline = None
    if baseline_path.is_file():
        try:
            loaded = json.loads(baseline_path.read_text())
            baseline = loaded if isinstance(loaded, dict) else None
        except (OSError, ValueError) as exc:
            log.warning("ignoring the baseline %s: %s", baseline_path, exc)
    return Verified(model_bytes, checked, baseline, None, False)


async def obtain(source: ModelSource, cache: ModelCache) -> Outcome:
    """One attempt at verified bytes for `source` (see the module docstring)."""
    if source.path is not None:
        return await asyncio.to_thread(load_local, source)
    assert source.uri is not None
    expected = source.expected_sha256
    if expected is not None:
        hit = await asyncio.to_thread(_from_cache, cache, expected)
        if hit is not None:
            log.info("serving %s from the cache (sha256 %s); MLflow not contacted", source.uri,
                     expected)  # fmt: skip
            return hit
    result = await _fetch(source.uri, cache, expected)
    kind = result.get("outcome")
    if kind == "mismatch":
        return Mismatch(str(result.get("expected")), str(result.get("actual")))
    if kind == "cached":
        sha256 = str(result.get("sha256"))
        if not is_sha256(sha256):
            return Unavailable(f"the fetch reported a bad sha256 {sha256!r}")
        hit = await asyncio.to_thread(_from_cache, cache, sha256)
        if hit is None:
            return Unavailable(f"the cache entry {sha256} vanished after the download")
        return hit
    reason = str(result.get("reason") or "the model fetch failed")
    if expected is None:
        # Offline start without an expected sha256: a version fetched earlier is trusted
        # (it was verified against the registry's tag when it was fetched).
        found: str | None = await asyncio.to_thread(cache.find_by_uri, source.uri)
        if found is not None:
            hit = await asyncio.to_thread(_from_cache, cache, found)
            if hit is not None:
                log.warning("%s; serving the cached copy of %s (sha256 %s)", reason,
                            source.uri, found)  # fmt: skip
                return hit
    return Unavailable(reason)


async def _fetch(uri: str, cache: ModelCache, expected: str | None) -> dict[str, Any]:
    """Run the fetch child; its outcome line, or an `unavailable` one."""
    command = [sys.executable, "-m", "edgeml.serving.fetch", "--model-uri", uri,
               "--cache-dir", str(cache.root)]  # fmt: skip
    if expected is not None:
        command += ["--expected-sha256", expected]
    env = dict(os.environ)
    package_root = str(Path(edgeml.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), FETCH_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        return {"outcome": "unavailable", "reason": f"fetching {uri} took over "
                f"{FETCH_TIMEOUT_SECONDS:.0f} s"}  # fmt: skip
    except asyncio.CancelledError:
        process.kill()
        raise
    for line in stderr.decode(errors="replace").splitlines()[-5:]:
        log.debug("fetch: %s", line)
    lines = stdout.decode(errors="replace").strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else None
    except ValueError:
        result = None
    if not isinstance(result, dict):
        tail = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        reason = f"the fetch of {uri} failed (exit {process.returncode}): {tail[0]}"
        return {"outcome": "unavailable", "reason": reason}
    return result

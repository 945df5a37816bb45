"""The node's model cache: verified models under `<cache-dir>/<sha256>/`, written atomically.

An entry holds `model.onnx`, optionally `baseline.json`, and `source.json` (where it
came from). An entry is built in a temporary directory beside the others and renamed
into place, so a reader sees a whole entry or none, and two pods filling the same
entry at once both end up with one complete copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL_FILE = "model.onnx"
BASELINE_FILE = "baseline.json"
SOURCE_FILE = "source.json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def sha256_hex(data: bytes) -> str:
    """The hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_sha256(text: str) -> bool:
    """Whether `text` is 64 lower-case hex digits."""
    return bool(_SHA256.match(text))


@dataclass(frozen=True)
class CachedModel:
    """A cache entry's contents, read (not yet verified by the reader)."""

    sha256: str
    model_bytes: bytes
    baseline: dict[str, Any] | None
    source: dict[str, Any]


class ModelCache:
    """The cache directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def entry(self, sha256: str) -> Path:
        """The directory of the entry for `sha256` (which may not exist)."""
        if not is_sha256(sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.root / sha256

    def has(self, sha256: str) -> bool:
        """Whether a complete entry exists for `sha256`."""
        return (self.entry(sha256) / MODEL_FILE).is_file()

    def read(self, sha256: str) -> CachedModel | None:
        """The entry for `sha256`, or None when absent or unreadable."""
        entry = self.entry(sha256)
        try:
            model_bytes = (entry / MODEL_FILE).read_bytes()
        except OSError:
            return None
        return CachedModel(
            sha256,
            model_bytes,
            _read_json(entry / BASELINE_FILE),
            _read_json(entry / SOURCE_FILE) or {},
        )

    def find_by_uri(self, uri: str) -> str | None:
        """The sha256 of an entry fetched from `uri`, newest first (for an offline start)."""
        try:
            entries = [p for p in self.root.iterdir() if is_sha256(p.name)]
        except OSError:
            return None
        matches = []
        for entry in entries:
            source = _read_json(entry / SOURCE_FILE) or {}
            if source.get("uri") == uri and (entry / MODEL_FILE).is_file():
                matches.append((entry.stat().st_mtime, entry.name))
        return max(matches)[1] if matches else None

    def remove(self, sha256: str) -> None:
        """Drop an entry (a corrupt one)."""
        shutil.rmtree(self.entry(sha256), ignore_errors=True)

    def staging(self) -> Path:
        """A fresh directory on the cache's filesystem to build an entry in."""
        self.root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".incoming-", dir=self.root))

    def commit(
        self,
        staging: Path,
        sha256: str,
        baseline: dict[str, Any] | None,
        source: dict[str, Any],
    ) -> Path:
        """Complete an entry whose `model.onnx` is in `staging`, and move it into place."""
        if baseline is not None:
            _write_json(staging / BASELINE_FILE, baseline)
        _write_json(staging / SOURCE_FILE, source)
        with (staging / MODEL_FILE).open("rb") as handle:
            os.fsync(handle.fileno())
        target = self.entry(sha256)
        try:
            os.rename(staging, target)
        except OSError:
            if not self.has(sha256):
                raise
            shutil.rmtree(staging, ignore_errors=True)  # another process got there first
        return target

    def store(
        self,
        model_bytes: bytes,
        sha256: str,
        baseline: dict[str, Any] | None,
        source: dict[str, Any],
    ) -> Path:
        """Write a whole entry from memory (a model read from a local path, tests)."""
        staging = self.staging()
        try:
            (staging / MODEL_FILE).write_bytes(model_bytes)
            return self.commit(staging, sha256, baseline, source)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _write_json(path: Path, value: dict[str, Any]) -> None:
    with path.open("w") as handle:
        json.dump(value, handle)
        handle.flush()
        os.fsync(handle.fileno())

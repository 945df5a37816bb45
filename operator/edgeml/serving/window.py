"""The recent window of `edgeml serve`: what this pod counted over the last N seconds.

Drift detection compares the training baseline's bins with the live counts of a recent
window (say the last 15 minutes) per pod, then sums pods per zone and for the fleet.
The operator keeps nothing essential in memory, so each pod answers for itself
(`GET /drift/window`).

How: the server's counters are cumulative (feature bins and predictions in
`Distributions`, feedback in `FeedbackCounts`, rows in the batch histogram) and the
request path only ever adds to them. The window never touches a request: at each slot
boundary it takes a flat snapshot of those counters (`Counts`, key → count) and keeps
the difference from the previous snapshot as the closed slot's counts. A read adds up
whole slots and the current partial slot (the live counters minus the snapshot taken
at the slot's start).

Boundaries come from a periodic asyncio task (`ServingApp.keep_window`), not lazily
from the next request: a lazy check would put a clock read on every inference, and the
boundary's state-file write (an fsync, milliseconds on an SD card) on whichever request
came first. The task runs on the event loop between requests, so a snapshot falls
exactly between two requests, and its file write goes to a thread.

Two tiers of epoch-aligned slots: fine (60 s, the last hour) and coarse (1 h, the last
24 h), a coarse slot being the sum of the fine slots in it. A window of W seconds up to
the fine tier's span is the current partial fine slot plus as many whole previous
slots as fit in W, so it spans between W - 60 and W seconds (only a W shorter than the
current partial slot gets that slot alone); a longer W does the same with hours. Each
slot remembers the seconds of it the server was counting (`seen`), so `covered`, the
sum over the slots read, never claims time before the server started or across a gap.

Counter resets: the server's counters reset together (a new install), so if any went
down between two snapshots all did, and the new values count whole, as Prometheus'
`increase()` does; no count is ever negative.

Persistence: `Window.state()` is the document to save at each boundary (per-slot
counts, never cumulative totals, so a restarted server's fresh counters do not matter)
and `Window.restore()` takes one back if it is for the same model, version, bins and
slot widths, keeping the slots still inside retention. `StateFile` writes it
atomically and never stops the server for a directory it cannot write.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import math
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("edgeml.serve.window")

STATE_FORMAT = 1
MAX_WINDOW_SECONDS = 86400

Key = tuple[str, ...]
"""A counter's name in a snapshot, e.g. ("feature", "temp", "3") for bin 3 of temp."""
Counts = dict[Key, float]
"""A flat snapshot (or difference) of counters; counts are ints, error sums floats."""


@dataclass(frozen=True)
class Tier:
    """Slots `width` seconds wide; the last `slots` of them are kept, the current one too."""

    width: float
    slots: int

    @property
    def span(self) -> float:
        """The seconds the tier reaches back."""
        return self.width * self.slots


FINE = Tier(60.0, 60)
COARSE = Tier(3600.0, 24)


@dataclass(frozen=True)
class WindowIdentity:
    """What a window counts: one model version, over bins named by a digest of their edges."""

    model: str
    version: str
    bins: str


@dataclass(frozen=True)
class WindowCounts:
    """A window read: the counts and the seconds of counting they cover."""

    counts: Counts
    covered: float


@dataclass
class _Slot:
    counts: Counts = field(default_factory=dict)
    seen: float = 0.0

    def add(self, counts: Mapping[Key, float], seen: float) -> None:
        add_counts(self.counts, counts)
        self.seen += seen


def add_counts(total: Counts, more: Mapping[Key, float]) -> None:
    """Add `more` into `total`, key by key."""
    for key, value in more.items():
        total[key] = total.get(key, 0) + value


def increase(current: Mapping[Key, float], previous: Mapping[Key, float]) -> Counts:
    """What cumulative counters gained from `previous` to `current` (zeros left out).

    A missing key is a zero. The server's counters reset together, so if one went down
    they all did, and every current value is new.
    """
    gained: Counts = {}
    for key, value in current.items():
        delta = value - previous.get(key, 0)
        if delta < 0:
            return {k: v for k, v in current.items() if v}
        if delta:
            gained[key] = delta
    if any(value and key not in current for key, value in previous.items()):
        return {k: v for k, v in current.items() if v}
    return gained


def bins_digest(
    features: Sequence[tuple[str, Sequence[float]]],
    classes: Sequence[str] | None,
    prediction_edges: Sequence[float] | None,
) -> str:
    """A digest of the bins counted; a saved window over other bins is not these counts."""
    text = json.dumps(
        [[[name, [float(e) for e in edges]] for name, edges in features], classes,
         None if prediction_edges is None else [float(e) for e in prediction_edges]],
        separators=(",", ":"),
    )  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()


class Window:
    """The recent-window memory over a source of cumulative counts (see the module doc).

    `source` returns the server's counters now; `clock` is wall time (slots are aligned
    to the epoch, so a restarted server finds its slots where it left them).
    """

    def __init__(
        self,
        identity: WindowIdentity,
        source: Callable[[], Mapping[Key, float]],
        *,
        clock: Callable[[], float] = time.time,
        fine: Tier = FINE,
        coarse: Tier = COARSE,
    ) -> None:
        ratio = coarse.width / fine.width if fine.width > 0 else 0.0
        if min(fine.slots, coarse.slots) < 1 or ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
            raise ValueError("slots must be positive, coarse ones a whole number of fine ones")
        self.identity = identity
        self.fine = fine
        self.coarse = coarse
        self._ratio = round(ratio)
        self._source = source
        self._clock = clock
        now = clock()
        self._current = self._index(now)  # the fine slot being counted
        self._since = now  # counted from here in the current slot
        self._base = dict(source())  # the counters at `_since`
        self._carried = _Slot()  # the current slot's counts from before a restart
        self._fine: dict[int, _Slot] = {}  # closed fine slots
        self._coarse: dict[int, _Slot] = {}  # coarse slots: sums of closed fine slots
        self.rolls = 0  # boundaries crossed: a saver compares it with the last one it saved

    def _index(self, now: float) -> int:
        return math.floor(now / self.fine.width)

    # --- time passing ---------------------------------------------------------------------

    def roll(self) -> bool:
        """Close the slots whose end has passed; whether any closed."""
        return self._roll(self._clock())

    def _roll(self, now: float) -> bool:
        index = self._index(now)
        current = self._current
        if index <= current:  # also when the clock stepped back: count on in this slot
            return False
        snapshot = dict(self._source())
        closing = self._carried
        closing.add(increase(snapshot, self._base), (current + 1) * self.fine.width - self._since)
        self._close(current, closing)
        # Slots that passed without a roll (a suspended process): the server was up, so
        # they were seen, and empty. Those older than the coarse retention would be
        # pruned at once, so they are skipped.
        for k in range(max(current + 1, index - self._ratio * self.coarse.slots), index):
            self._close(k, _Slot(seen=self.fine.width))
        self._current = index
        self._since = index * self.fine.width
        self._base = snapshot
        self._carried = _Slot()
        self._prune()
        self.rolls += 1
        return True

    def _close(self, index: int, slot: _Slot) -> None:
        self._fine[index] = slot
        self._coarse.setdefault(index // self._ratio, _Slot()).add(slot.counts, slot.seen)

    def _prune(self) -> None:
        oldest_fine = self._current - self.fine.slots + 1
        oldest_coarse = self._current // self._ratio - self.coarse.slots + 1
        for k in [k for k in self._fine if k < oldest_fine]:
            del self._fine[k]
        for h in [h for h in self._coarse if h < oldest_coarse]:
            del self._coarse[h]

    # --- reading ----------------------------------------------------------------------------

    def read(self, seconds: float) -> WindowCounts:
        """The counts of the last `seconds`: whole slots that fit, plus the current one."""
        now = self._clock()
        self._roll(now)
        now = max(now, self._since)
        counts, covered = self._live(now)
        if seconds <= self.fine.span:
            tier, slots, current = self.fine, self._fine, self._current
        else:
            tier, slots, current = self.coarse, self._coarse, self._current // self._ratio
            this_hour = slots.get(current)  # the closed fine slots of the current hour
            if this_hour is not None:
                add_counts(counts, this_hour.counts)
                covered += this_hour.seen
        elapsed = now - current * tier.width
        whole = min(tier.slots - 1, max(0, math.floor((seconds - elapsed) / tier.width)))
        for k in range(current - whole, current):
            slot = slots.get(k)
            if slot is not None:
                add_counts(counts, slot.counts)
                covered += slot.seen
        return WindowCounts(counts, covered)

    def _live(self, now: float) -> tuple[Counts, float]:
        """The current slot so far: its counts and the seconds of it counted."""
        counts = dict(self._carried.counts)
        add_counts(counts, increase(self._source(), self._base))
        return counts, self._carried.seen + max(0.0, now - self._since)

    # --- saving and restoring ----------------------------------------------------------------

    def state(self, *, partial: bool = False) -> dict[str, Any]:
        """The document to save: the closed slots' counts and, with `partial` (at
        shutdown), the current slot's so far."""
        now = self._clock()
        self._roll(now)
        # Each key is written once, and slots refer to it by position: a slot is then a
        # few bytes per count, which matters for a file rewritten every minute on an SD card.
        keys: dict[Key, int] = {}
        slot = functools.partial(_slot_document, keys)
        document: dict[str, Any] = {
            "format": STATE_FORMAT,
            "model": self.identity.model,
            "version": self.identity.version,
            "bins": self.identity.bins,
            "fineSeconds": self.fine.width,
            "coarseSeconds": self.coarse.width,
            "savedAt": now,
            "fine": [slot(k, s) for k, s in sorted(self._fine.items())],
            "coarse": [slot(h, s) for h, s in sorted(self._coarse.items())],
            "partial": None,
        }
        if partial:
            counts, seen = self._live(max(now, self._since))
            document["partial"] = slot(self._current, _Slot(counts, seen))
        document["keys"] = [list(key) for key in keys]
        return document

    def restore(self, document: Any) -> str:
        """Take back a saved state's slots still inside retention, into a window that has
        counted nothing yet; a sentence saying what was restored, or why nothing was."""
        refusal = self._refusal(document)
        if refusal:
            return refusal
        try:
            keys = _parse_keys(document["keys"])
            fine = [_parse_slot(keys, item) for item in document["fine"]]
            coarse = [_parse_slot(keys, item) for item in document["coarse"]]
            partial = document.get("partial")
            saved_partial = None if partial is None else _parse_slot(keys, partial)
        except (KeyError, TypeError, ValueError) as exc:
            return f"the saved window is malformed ({exc})"
        current = self._current
        hour = current // self._ratio
        oldest_fine = current - self.fine.slots + 1
        oldest_coarse = hour - self.coarse.slots + 1
        # Slots at or after now are from a clock that has since stepped back: dropped.
        self._fine = {k: s for k, s in fine if oldest_fine <= k < current}
        self._coarse = {h: s for h, s in coarse if oldest_coarse <= h <= hour}
        if saved_partial is not None:
            k, slot = saved_partial
            if k == current:  # restarted within the slot: count on from where it stopped
                self._carried = slot
            elif k < current:  # the slot ended while the server was down: it is closed
                if k >= oldest_fine:
                    self._fine[k] = slot
                if k // self._ratio >= oldest_coarse:
                    self._coarse.setdefault(k // self._ratio, _Slot()).add(slot.counts, slot.seen)
        seen = sum(s.seen for s in self._coarse.values()) + self._carried.seen
        if not seen:
            return "the saved window has no slots inside retention"
        current_too = " and the current slot so far" if self._carried.seen else ""
        return (
            f"restored {seen:.1f} s of counts: {len(self._fine)} fine and "
            f"{len(self._coarse)} coarse slot(s){current_too}"
        )

    def _refusal(self, document: Any) -> str:
        if not isinstance(document, dict) or "format" not in document:
            return "the file is not a saved window"
        if document["format"] != STATE_FORMAT:
            return f"the saved window has format {document['format']!r}, not {STATE_FORMAT}"
        mine = self.identity
        if (document.get("model"), document.get("version")) != (mine.model, mine.version):
            return (
                f"the saved window is for model {document.get('model')!r} version "
                f"{document.get('version')!r}, not {mine.model!r} version {mine.version!r}"
            )
        if document.get("bins") != mine.bins:
            return "the saved window counted other bins (the baseline's edges changed)"
        widths = (document.get("fineSeconds"), document.get("coarseSeconds"))
        if widths != (self.fine.width, self.coarse.width):
            return f"the saved window has {widths[0]} s / {widths[1]} s slots, not these"
        return ""


def _slot_document(keys: dict[Key, int], index: int, slot: _Slot) -> dict[str, Any]:
    return {
        "slot": index,
        "seen": round(slot.seen, 3),
        "counts": [[keys.setdefault(key, len(keys)), value] for key, value in slot.counts.items()],
    }


def _parse_keys(raw: Any) -> list[Key]:
    if not isinstance(raw, list):
        raise ValueError("'keys' must be a list")
    for key in raw:
        if not isinstance(key, list) or not all(isinstance(part, str) for part in key):
            raise ValueError(f"a key must be a list of strings, not {key!r}")
    return [tuple(key) for key in raw]


def _parse_slot(keys: list[Key], item: Any) -> tuple[int, _Slot]:
    index, seen, pairs = item["slot"], item["seen"], item["counts"]
    if not _is_int(index) or not _is_number(seen) or seen < 0 or not isinstance(pairs, list):
        raise ValueError("a slot needs an integer 'slot', 'seen' seconds and 'counts'")
    counts: Counts = {}
    for pair in pairs:
        position, value = pair
        if not _is_int(position) or not 0 <= position < len(keys):
            raise ValueError(f"a count refers to no key ({position!r})")
        if not _is_number(value) or value < 0:
            raise ValueError(f"a count must be a non-negative number, not {value!r}")
        counts[keys[position]] = value
    return index, _Slot(counts, float(seen))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


# --- where the state goes, and writing it ------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class StateLocation:
    """Where the window is saved: `path`, else `directory`/<model>-<version>-<hostname>.json.

    In a pod the hostname is the pod's name, stable across container restarts, and the
    directory may be a hostPath shared by the node's pods: hence the hostname.
    """

    path: Path | None = None
    directory: Path | None = None
    hostname: str = ""

    def file_for(self, model: str, version: str) -> Path | None:
        """The state file for a model version (None: keep the window in memory only)."""
        if self.path is not None:
            return self.path
        if self.directory is None:
            return None
        name = "-".join(_UNSAFE.sub("_", part) for part in (model, version, self.hostname))
        return self.directory / f"{name}.json"


class StateFile:
    """A window's state on disk, replaced atomically; a failure is logged once and the
    server carries on with the window in memory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # The boundary task saves from a thread and shutdown saves once more: one at a
        # time, so the newer document is renamed into place last.
        self._lock = threading.Lock()
        self._failed = False

    def load(self) -> tuple[Any, str]:
        """The saved document, or None and why there is none."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None, f"no saved window at {self.path}"
        except OSError as exc:
            return None, f"cannot read {self.path} ({exc.strerror or exc})"
        try:
            return orjson.loads(raw), ""
        except orjson.JSONDecodeError:
            return None, f"{self.path} is not JSON"

    def save(self, document: Mapping[str, Any]) -> bool:
        """Write `document` (temp file, fsync, rename); whether it was written."""
        data = orjson.dumps(document)
        directory = self.path.parent
        with self._lock:
            try:
                directory.mkdir(parents=True, exist_ok=True)
                fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                            dir=directory)  # fmt: skip
                try:
                    with os.fdopen(fd, "wb") as handle:
                        handle.write(data)
                        handle.flush()
                        os.fsync(handle.fileno())
                    os.replace(temp, self.path)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(temp)
                    raise
                _fsync_directory(directory)
            except OSError as exc:
                if not self._failed:
                    self._failed = True
                    log.warning("cannot save the window to %s (%s); keeping it in memory only",
                                self.path, exc.strerror or exc)  # fmt: skip
                return False
        return True


def _fsync_directory(directory: Path) -> None:
    # The rename is durable once the directory is; some filesystems refuse, harmlessly.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove_stale_states(directory: Path, older_than: float) -> int:
    """Remove state files (and abandoned temp files) last written before `older_than`.

    In a hostPath directory every pod that ever ran on the node left one; one unwritten
    for longer than the coarse retention holds nothing any window would restore.
    """
    removed = 0
    try:
        entries = list(directory.iterdir())
    except OSError:
        return 0
    for entry in entries:
        if not entry.name.endswith((".json", ".tmp")):
            continue
        with contextlib.suppress(OSError):
            if entry.is_file() and entry.stat().st_mtime < older_than:
                entry.unlink()
                removed += 1
    return removed

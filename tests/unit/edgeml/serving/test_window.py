"""The recent window: slots, tiers, covered spans, resets, saving and restoring, on a fake clock.

Tiers are small here: fine slots of 10 s (6 kept, a minute) and coarse slots of 60 s
(4 kept, 4 minutes). The source is a dict of cumulative counts the test bumps; the
boundary task is played by calling `roll()` at each step, as the server's task does
at each boundary.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeml.serving.window import (
    Counts,
    StateFile,
    StateLocation,
    Tier,
    Window,
    WindowIdentity,
    bins_digest,
    increase,
    remove_stale_states,
)

FINE = Tier(10, 6)
COARSE = Tier(60, 4)
IDENTITY = WindowIdentity("m", "1", bins_digest([("f0", [0.0, 1.0])], ["0", "1"], None))
A = ("feature", "f0", "0")
B = ("class", "1")
START = 6000.0  # a coarse boundary (and a fine one)


class Clock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Source:
    """Cumulative counters, bumped by the test."""

    def __init__(self) -> None:
        self.counts: Counts = {}

    def __call__(self) -> Counts:
        return dict(self.counts)

    def add(self, key: tuple[str, ...], n: float = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n


def make(
    clock: Clock, source: Source | None = None, identity: WindowIdentity = IDENTITY
) -> tuple[Window, Source]:
    source = source or Source()
    return Window(identity, source, clock=clock, fine=FINE, coarse=COARSE), source


def at(clock: Clock, window: Window, now: float) -> None:
    """Move the clock, and roll as the boundary task would."""
    clock.now = now
    window.roll()


# --- slots and tiers ---------------------------------------------------------------------------


def test_counts_stay_in_their_slot_when_it_closes() -> None:
    clock = Clock()
    window, source = make(clock)
    source.add(A, 3)
    at(clock, window, START + 12)  # slot 0 closed with 3, slot 1 counting
    source.add(A, 2)
    assert window.read(10).counts == {A: 2}  # the current partial slot (2 s of it) alone
    assert window.read(12).counts == {A: 5}  # the 2 s partial slot and one whole slot
    assert window.read(12).covered == 12


def test_a_fine_window_spans_between_w_minus_a_slot_and_w() -> None:
    clock = Clock()
    window, source = make(clock)
    for step in range(6):  # one count per fine slot, at its start
        at(clock, window, START + 10 * step)
        source.add(A)
    at(clock, window, START + 55)  # 5 s into the sixth slot
    # 30 s: the 5 s partial slot and two whole slots (25 s; three would be 35 > 30).
    read = window.read(30)
    assert read.counts == {A: 3}
    assert read.covered == 25
    assert window.read(60).counts == {A: 6}
    assert window.read(60).covered == 55


def test_a_window_shorter_than_the_partial_slot_is_that_slot() -> None:
    clock = Clock()
    window, source = make(clock)
    at(clock, window, START + 18)
    source.add(A)
    read = window.read(3)
    assert read.counts == {A: 1}
    assert read.covered == 8  # the only counts there are, and it says so


def test_a_window_past_the_fine_span_uses_whole_coarse_slots() -> None:
    clock = Clock()
    window, source = make(clock)
    for minute in range(3):
        at(clock, window, START + 60 * minute + 5)
        source.add(A, 10**minute)  # 1, 10, 100 in minutes 0, 1, 2
    at(clock, window, START + 150)  # 30 s into minute 2
    assert window.read(60).counts == {A: 100}  # fine: the last 60 s, back to 6090
    # 100 s: the partial minute (30 s) and one whole minute; 150 s: both whole minutes.
    assert window.read(100).counts == {A: 110}
    assert window.read(100).covered == 90
    assert window.read(150).counts == {A: 111}
    assert window.read(150).covered == 150


def test_covered_never_reaches_before_the_start() -> None:
    clock = Clock(START + 7)  # started 7 s into a slot
    window, source = make(clock)
    source.add(A)
    at(clock, window, START + 24)
    assert window.read(60).covered == 17
    assert window.read(240).covered == 17
    assert window.read(60).counts == {A: 1}


def test_slots_past_retention_are_forgotten() -> None:
    clock = Clock()
    window, source = make(clock)
    source.add(A)
    at(clock, window, START + 65)  # the fine tier keeps 6 slots: slot 0 is gone from it
    assert window.read(60).counts == {}
    assert window.read(60).covered == 55
    assert window.read(120).counts == {A: 1}  # the coarse tier still has minute 0
    at(clock, window, START + 245)  # minute 0 is now older than 4 minutes
    assert window.read(240).counts == {}
    assert window.read(240).covered == 185


def test_slots_that_passed_without_a_roll_are_seen_and_empty() -> None:
    clock = Clock()
    window, source = make(clock)
    source.add(A)
    clock.now = START + 35  # three boundaries passed without the task (a suspended process)
    read = window.read(60)
    assert read.counts == {A: 1}
    assert read.covered == 35


def test_a_clock_stepping_back_keeps_counting_in_the_current_slot() -> None:
    clock = Clock()
    window, source = make(clock)
    at(clock, window, START + 25)
    source.add(A)
    at(clock, window, START + 5)
    source.add(A)
    read = window.read(60)
    assert read.counts == {A: 2}
    assert read.covered >= 0


def test_a_counter_reset_counts_the_new_values_and_nothing_negative() -> None:
    clock = Clock()
    window, source = make(clock)
    source.add(A, 5)
    source.add(B, 5)
    at(clock, window, START + 10)
    source.counts = {A: 2}  # the source restarted and counted 2 since
    at(clock, window, START + 20)
    assert window.read(30).counts == {A: 7, B: 5}
    assert all(v >= 0 for v in window.read(60).counts.values())


@pytest.mark.parametrize(
    ("current", "previous", "gained"),
    [
        ({A: 5, B: 2}, {A: 3, B: 2}, {A: 2}),
        ({A: 5}, {}, {A: 5}),
        ({A: 1, B: 9}, {A: 3, B: 2}, {A: 1, B: 9}),  # A went down: all reset
        ({A: 4}, {A: 3, B: 2}, {A: 4}),  # B vanished: reset
        ({A: 0.5}, {A: 0.25}, {A: 0.25}),
    ],
)
def test_increase(current: Counts, previous: Counts, gained: Counts) -> None:
    assert increase(current, previous) == gained


EVENTS = st.lists(
    st.tuples(st.floats(0, 30, allow_nan=False), st.sampled_from([A, B]), st.integers(1, 5)),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(
    start=st.floats(0, 59, allow_nan=False),
    events=EVENTS,
    seconds=st.integers(1, 240),
)
def test_a_read_is_the_events_since_its_first_slot(
    start: float, events: list[tuple[float, tuple[str, ...], int]], seconds: int
) -> None:
    """Against a brute-force count of timestamped events: every count in the span read,
    none before it, and covered is that span less the time before the start."""
    clock = Clock(START + start)
    window, source = make(clock)
    happened = []
    for gap, key, n in events:
        at(clock, window, clock.now + gap)
        source.add(key, n)
        happened.append((clock.now, key, n))
    read = window.read(seconds)
    now = clock.now
    tier = FINE if seconds <= FINE.span else COARSE
    current = int(now // tier.width)
    elapsed = now - current * tier.width
    whole = min(tier.slots - 1, max(0, math.floor((seconds - elapsed) / tier.width)))
    first = (current - whole) * tier.width
    expected: Counts = {}
    for when, key, n in happened:
        if when >= first:
            expected[key] = expected.get(key, 0) + n
    assert read.counts == expected
    assert read.covered == pytest.approx(now - max(first, START + start))


# --- saving and restoring ------------------------------------------------------------------------


def test_a_saved_window_is_restored_by_a_restarted_server() -> None:
    clock = Clock()
    window, source = make(clock)
    source.add(A, 3)
    at(clock, window, START + 10)
    source.add(B, 4)
    at(clock, window, START + 20)  # the boundary save: two closed slots
    document = json.loads(json.dumps(window.state()))
    source.add(A, 100)  # the partial slot: lost in a crash
    clock.now = START + 31  # a new process: fresh counters
    restarted, fresh = make(clock)
    assert restarted.restore(document) == "restored 20.0 s of counts: 2 fine and 1 coarse slot(s)"
    clock.now = START + 32
    fresh.add(A, 1)
    read = restarted.read(60)
    assert read.counts == {A: 4, B: 4}
    assert read.covered == 20 + 1  # the down time is not covered
    assert restarted.read(240).counts == {A: 4, B: 4}


def test_a_shutdown_save_keeps_the_partial_slot_too() -> None:
    clock = Clock()
    window, source = make(clock)
    at(clock, window, START + 12)
    source.add(A, 3)
    clock.now = START + 15
    document = json.loads(json.dumps(window.state(partial=True)))
    # Restarted within the same slot: it counts on in it.
    clock.now = START + 17
    same, fresh = make(clock)
    assert same.restore(document).endswith("and the current slot so far")
    clock.now = START + 18
    fresh.add(A, 1)
    assert same.read(5).counts == {A: 4}
    assert same.read(5).covered == 5 + 1  # before the shutdown, and since the restart
    at(clock, same, START + 20)  # its close adds both parts, once
    assert same.read(60).counts == {A: 4}
    assert same.read(240).counts == {A: 4}
    # Restarted after the slot ended: the slot is closed, with what was counted.
    clock.now = START + 33
    later, _ = make(clock)
    later.restore(document)
    clock.now = START + 34
    assert later.read(60).counts == {A: 3}
    assert later.read(60).covered == 10 + 5 + 1  # slot 0, slot 1 until the shutdown, now
    assert later.read(240).counts == {A: 3}


def test_a_restore_keeps_only_slots_inside_retention() -> None:
    clock = Clock()
    window, source = make(clock)
    source.add(A)
    at(clock, window, START + 70)
    source.add(B)
    at(clock, window, START + 80)
    document = window.state()
    clock.now = START + 245  # minute 0 is past the coarse retention; minute 1 is not
    restored, _ = make(clock)
    restored.restore(document)
    assert restored.read(240).counts == {B: 1}
    assert restored.read(60).counts == {}  # minute 1's fine slots are past the fine retention


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"model": "other"}, "for model 'other'"),
        ({"version": "2"}, "version '2'"),
        ({"bins": "0" * 64}, "counted other bins"),
        ({"fineSeconds": 60}, "60 s / 60 s slots"),
        ({"format": 9}, "format 9"),
        ({"fine": [{"slot": "x", "seen": 1, "counts": []}]}, "malformed"),
        ({"fine": [{"slot": 1, "seen": 1, "counts": [[0, -1]]}]}, "malformed"),
        ({"coarse": [{"slot": 1, "seen": 1, "counts": [[99, 1]]}]}, "refers to no key"),
        ({"keys": [["a", 1]]}, "malformed"),
        ({"keys": None}, "malformed"),
        ({"partial": {"slot": 1}}, "malformed"),
    ],
)
def test_a_foreign_or_corrupt_state_is_ignored(change: dict[str, Any], reason: str) -> None:
    clock = Clock()
    window, source = make(clock)
    source.add(A)
    at(clock, window, START + 10)
    document = {**window.state(), **change}
    restored, _ = make(clock)
    assert reason in restored.restore(document)
    assert restored.read(60).counts == {}


@pytest.mark.parametrize("document", [None, [], "text", {"no": "format"}])
def test_something_that_is_not_a_state_is_ignored(document: Any) -> None:
    window, _ = make(Clock())
    assert "not a saved window" in window.restore(document)


def test_another_version_does_not_restore_its_counts() -> None:
    clock = Clock()
    window, source = make(clock)
    source.add(A)
    at(clock, window, START + 10)
    newer = WindowIdentity("m", "2", IDENTITY.bins)
    restored, _ = make(clock, identity=newer)
    assert "version '1'" in restored.restore(window.state())
    assert restored.read(60).counts == {}


def test_bins_digest_changes_with_the_edges() -> None:
    one = bins_digest([("f0", [0.0, 1.0])], ["0", "1"], None)
    assert one == bins_digest([("f0", [0, 1])], ["0", "1"], None)
    assert one != bins_digest([("f0", [0.0, 2.0])], ["0", "1"], None)
    assert one != bins_digest([("f1", [0.0, 1.0])], ["0", "1"], None)
    assert bins_digest([], None, [1.0]) != bins_digest([], None, [2.0])


def test_uneven_tiers_are_refused() -> None:
    with pytest.raises(ValueError, match="whole number"):
        Window(IDENTITY, Source(), clock=Clock(), fine=Tier(10, 6), coarse=Tier(25, 4))


# --- the state file -------------------------------------------------------------------------------


def test_the_state_file_round_trips_and_leaves_no_temp_files(tmp_path: Path) -> None:
    clock = Clock()
    window, source = make(clock)
    source.add(A, 2)
    at(clock, window, START + 10)
    state = StateFile(tmp_path / "windows" / "m-1-pod.json")  # the directory is made
    assert state.save(window.state())
    assert state.save(window.state())
    assert [p.name for p in (tmp_path / "windows").iterdir()] == ["m-1-pod.json"]
    document, reason = state.load()
    assert reason == ""
    restored, _ = make(clock)
    restored.restore(document)
    assert restored.read(60).counts == {A: 2}


def test_a_missing_or_garbled_state_file_is_a_reason(tmp_path: Path) -> None:
    assert StateFile(tmp_path / "none.json").load() == (
        None,
        f"no saved window at {tmp_path}/none.json",
    )
    (tmp_path / "bad.json").write_bytes(b"{half")
    document, reason = StateFile(tmp_path / "bad.json").load()
    assert document is None
    assert "is not JSON" in reason


def test_an_unwritable_place_is_logged_once_and_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "file").write_text("a file, not a directory")
    state = StateFile(tmp_path / "file" / "windows" / "m.json")
    with caplog.at_level(logging.WARNING, logger="edgeml.serve.window"):
        assert not state.save({"format": 1})
        assert not state.save({"format": 1})
    warnings = [r for r in caplog.records if "cannot save the window" in r.getMessage()]
    assert len(warnings) == 1
    assert "keeping it in memory only" in warnings[0].getMessage()


def test_the_default_location_names_the_model_version_and_host(tmp_path: Path) -> None:
    location = StateLocation(directory=tmp_path, hostname="edge-pod-7f9c")
    assert location.file_for("vibration", "3") == tmp_path / "vibration-3-edge-pod-7f9c.json"
    assert StateLocation(directory=tmp_path, hostname="a/b").file_for("m", "1") == (
        tmp_path / "m-1-a_b.json"
    )
    explicit = StateLocation(path=tmp_path / "w.json")
    assert explicit.file_for("m", "9") == tmp_path / "w.json"
    assert StateLocation().file_for("m", "1") is None


def test_stale_state_files_are_removed(tmp_path: Path) -> None:
    for name in ("old.json", "fresh.json", ".old.json.x.tmp", "other.txt"):
        (tmp_path / name).write_text("{}")
    for name in ("old.json", ".old.json.x.tmp", "other.txt"):
        os.utime(tmp_path / name, (1000, 1000))
    assert remove_stale_states(tmp_path, older_than=2000) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.json", "other.txt"]
    assert remove_stale_states(tmp_path / "missing", older_than=2000) == 0

"""restartPolicy decisions and CrashLoopBackOff timing."""

import pytest

from localcluster.agent.restarts import (
    INITIAL_BACKOFF,
    MAX_BACKOFF,
    RESET_AFTER,
    Backoff,
    after_restart,
    restart_delay,
    should_restart,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("policy", "code", "expected"),
    [
        ("Always", 0, True),
        ("Always", 1, True),
        ("OnFailure", 0, False),
        ("OnFailure", 2, True),
        ("Never", 0, False),
        ("Never", 1, False),
    ],
)
def test_should_restart(policy: str, code: int, expected: bool) -> None:
    assert should_restart(policy, code) is expected


def test_init_containers_restart_only_on_failure_unless_never() -> None:
    assert not should_restart("Always", 0, init=True)
    assert should_restart("Always", 1, init=True)
    assert should_restart("OnFailure", 1, init=True)
    assert not should_restart("Never", 1, init=True)


def test_first_restart_is_immediate_then_backoff_doubles_to_a_cap() -> None:
    assert restart_delay(None, finished_at=100, now=100) == 0
    b = after_restart(None, now=100)
    assert b == Backoff(INITIAL_BACKOFF, 100)
    # Crashed again at 101: wait out the 10 s from when it finished.
    assert restart_delay(b, finished_at=101, now=101) == INITIAL_BACKOFF
    assert restart_delay(b, finished_at=101, now=108) == pytest.approx(3)
    assert restart_delay(b, finished_at=101, now=112) == 0
    seconds = []
    for i in range(8):
        b = after_restart(b, now=112 + i)
        seconds.append(b.seconds)
    assert seconds[:4] == [20, 40, 80, 160]
    assert max(seconds) == MAX_BACKOFF


def test_backoff_resets_after_a_long_healthy_run() -> None:
    b = Backoff(160, 0)
    assert restart_delay(b, finished_at=RESET_AFTER + 1, now=RESET_AFTER + 1) == 0
    assert after_restart(b, now=RESET_AFTER + 1).seconds == INITIAL_BACKOFF

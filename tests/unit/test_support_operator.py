"""An operator the tests or benches start dies with them, whatever kills them."""

from __future__ import annotations

import os
import subprocess
import sys

from support.processes import alive
from support.wait import wait_for

PARENT = """
import subprocess, sys, time
from support.operator import _die_with_parent
child = subprocess.Popen(["sleep", "120"], preexec_fn=_die_with_parent)
print(child.pid, flush=True)
time.sleep(120)
"""


def test_a_child_started_as_the_operator_is_ends_when_its_parent_is_killed() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert alive(child)
        parent.kill()  # SIGKILL: no handler, no cleanup of its own
        parent.wait(10)
        wait_for(lambda: alive(child), lambda alive: not alive, timeout=10,
                 what=f"the child {child} to end with its parent")  # fmt: skip
    finally:
        parent.kill()
        parent.wait(10)

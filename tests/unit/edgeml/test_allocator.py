"""The operator's memory: malloc_trim releases what glibc kept, the trimmer stops, and
the operator does not import what it rarely needs."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from edgeml.allocator import malloc_trim, start_trimming

NOT_GLIBC = pytest.mark.skipif(malloc_trim() is None, reason="not glibc: nothing to trim")

# Big blocks (under glibc's mmap threshold, so from the heap) between small ones that stay:
# freed, the big ones are holes glibc keeps resident until malloc_trim gives them back.
FRAGMENT_THEN_TRIM = """
import sys
from edgeml.allocator import malloc_trim

def rss_mb():
    with open("/proc/self/status") as f:
        line = next(l for l in f if l.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024

big, keep = [], []
for i in range(3000):
    big.append(bytearray(60000))
    keep.append(bytearray(200))
del big
before = rss_mb()
released = malloc_trim()()
after = rss_mb()
print(before, after, released)
"""


@NOT_GLIBC
def test_malloc_trim_gives_freed_heap_memory_back() -> None:
    done = subprocess.run(
        [sys.executable, "-c", FRAGMENT_THEN_TRIM], capture_output=True, text=True, check=True
    )
    before, after, released = done.stdout.split()
    assert int(released) == 1
    assert float(before) - float(after) > 100, done.stdout  # of the 180 MB freed


@NOT_GLIBC
def test_the_trimmer_runs_until_stopped_and_zero_means_never() -> None:
    assert start_trimming(0) is None
    stop = threading.Event()
    thread = start_trimming(0.01, stop)
    assert thread is not None
    assert thread.daemon
    assert thread.is_alive()
    stop.set()
    thread.join(5)
    assert not thread.is_alive()


def test_the_operator_starts_without_importing_boto3() -> None:
    # boto3 costs a process 26 MB of memory; only an s3:// dataset needs it (datasource/s3.py).
    check = (
        "import sys, edgeml.runtime, edgeml.controllers.handlers; "
        "print(sorted(m for m in ('boto3', 'botocore') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"

"""Exit statuses, termination messages, pid files and the launcher's mount points."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from localcluster.agent import containers, launch

pytestmark = pytest.mark.unit


def test_exit_status() -> None:
    assert containers.exit_status(0) == (0, 0)
    assert containers.exit_status(3) == (3, 0)
    assert containers.exit_status(-9) == (137, 9)
    assert containers.exit_status(-15) == (143, 15)


def test_termination_message(tmp_path: Path) -> None:
    msg, log = tmp_path / "c.termination-log", tmp_path / "c.log"
    log.write_text("old run\n" + "".join(f"line {i}\n" for i in range(200)))
    offset = len("old run\n")
    msg.write_text("")
    assert containers.termination_message(msg, "File", log, offset, 1) == ""
    fallback = containers.termination_message(msg, "FallbackToLogsOnError", log, offset, 1)
    assert fallback.splitlines()[-1] == "line 199"
    assert "old run" not in fallback
    assert len(fallback.splitlines()) <= 80
    assert containers.termination_message(msg, "FallbackToLogsOnError", log, offset, 0) == ""
    msg.write_text("x" * 10000)
    assert len(containers.termination_message(msg, "File", log, 0, 1)) == 4096


def test_pid_file_kills_only_the_same_process(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:
        f = tmp_path / "c.pid"
        containers.write_pid_file(f, proc.pid)
        record = json.loads(f.read_text())
        # A recycled pid (different start time) is left alone.
        f.write_text(json.dumps({"pid": proc.pid, "start": record["start"] + 1}))
        assert containers.kill_recorded(f) is None
        assert proc.poll() is None
        assert not f.exists()
        containers.write_pid_file(f, proc.pid)
        assert containers.kill_recorded(f) == proc.pid
        assert proc.wait(timeout=5) == -9
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_ensure_mountpoint_records_what_it_created(tmp_path: Path) -> None:
    record = tmp_path / "created.txt"
    target = tmp_path / "a" / "b" / "dev" / "termination-log"
    launch.ensure_mountpoint(target, True, str(record))
    assert target.is_file()
    launch.ensure_mountpoint(tmp_path / "a" / "dir", False, str(record))
    lines = record.read_text().splitlines()
    assert lines == [
        str(tmp_path / "a"),
        str(tmp_path / "a" / "b"),
        str(tmp_path / "a" / "b" / "dev"),
        str(target),
        str(tmp_path / "a" / "dir"),
    ]
    launch.ensure_mountpoint(target, True, str(record))  # exists: nothing recorded
    assert len(record.read_text().splitlines()) == 5


def test_launcher_execs_with_env_and_workdir(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    out = tmp_path / "out"
    spec.write_text(
        json.dumps(
            {
                "command": ["sh", "-c", f'echo "$GREETING $PWD" > {out}'],
                "env": {"GREETING": "hi", "PATH": os.environ["PATH"]},
                "workingDir": str(tmp_path / "wd"),
                "mounts": [],
            }
        )
    )
    hack = str(Path(containers.__file__).resolve().parents[2])
    rc = subprocess.run(
        [sys.executable, "-m", "localcluster.agent.launch", str(spec)],
        env={"PYTHONPATH": hack, "PATH": os.environ["PATH"]},
        check=False,
    ).returncode
    assert rc == 0
    assert out.read_text().strip() == f"hi {tmp_path / 'wd'}"

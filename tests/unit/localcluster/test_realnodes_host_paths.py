"""`down` removes the host paths the real-kubelet tier created, even the netns directory
that `ip netns` turns into a shared self-bind-mount (rmdir alone fails with EBUSY)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from localcluster import realnodes

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")


def _self_bind(path: Path) -> None:
    # What iproute2 does to /run/netns on its first `ip netns add`.
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    subprocess.run(["mount", "--make-shared", str(path)], check=True)


def _mounted(path: Path) -> bool:
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return str(path) in points


def test_an_empty_self_mounted_netns_dir_is_unmounted_and_removed(tmp_path: Path) -> None:
    netns = tmp_path / "netns"
    netns.mkdir()
    _self_bind(netns)
    _self_bind(netns)  # two `ip netns add` racing stack two mounts

    realnodes._remove_netns_dir(netns)

    assert not _mounted(netns)
    assert not netns.exists()


def test_a_netns_dir_still_holding_a_namespace_is_kept_mounted(tmp_path: Path) -> None:
    netns = tmp_path / "netns"
    netns.mkdir()
    _self_bind(netns)
    (netns / "emlp-12345678").touch()
    try:
        realnodes._remove_netns_dir(netns)

        assert _mounted(netns)
        assert (netns / "emlp-12345678").exists()
    finally:
        subprocess.run(["umount", str(netns)], check=False)


def test_host_leftovers_on_a_machine_without_iptables_is_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`down` on a machine where the tier never ran (no iptables installed yet)."""
    from localcluster.settings import Settings

    monkeypatch.setenv("PATH", str(tmp_path))  # no iptables-save on it
    monkeypatch.setattr(realnodes, "SBIN", str(tmp_path))
    settings = Settings(home=tmp_path)
    assert realnodes.host_leftovers(settings) == []

"""Volumes rendered to files, and the directory sync."""

import base64
import stat
from pathlib import Path

import pytest

from localcluster.agent import volumes
from localcluster.agent.env import PodAddresses
from localcluster.agent.volumes import File, UnsupportedVolumeError, VolumeNotReadyError

pytestmark = pytest.mark.unit

ADDR = PodAddresses("10.89.1.5", "10.89.1.1")


class FakeSources:
    def __init__(self) -> None:
        self.config_maps = {
            "ns/cm": {
                "data": {"a.conf": "x=1", "b": "two"},
                "binaryData": {"bin": base64.b64encode(b"\x00\x01").decode()},
            },
            "ns/kube-root-ca.crt": {"data": {"ca.crt": "CERT"}},
        }
        self.secrets = {"ns/s": {"data": {"pw": base64.b64encode(b"hunter2").decode()}}}
        self.tokens: list[tuple[str, str, str, int]] = []

    def config_map(self, namespace: str, name: str) -> dict | None:
        return self.config_maps.get(f"{namespace}/{name}")

    def secret(self, namespace: str, name: str) -> dict | None:
        return self.secrets.get(f"{namespace}/{name}")

    def service_account_token(
        self, namespace: str, service_account: str, audience: str, expiration: int
    ) -> str:
        self.tokens.append((namespace, service_account, audience, expiration))
        return "TOKEN"


POD = {
    "metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"app": "x"}},
    "spec": {"serviceAccountName": "robot", "containers": [{"name": "c"}]},
}


def test_config_map_all_keys_and_items() -> None:
    src = FakeSources()
    files = volumes.render({"name": "v", "configMap": {"name": "cm"}}, POD, src, ADDR)
    assert files == {"a.conf": File(b"x=1"), "b": File(b"two"), "bin": File(b"\x00\x01")}
    vol = {
        "name": "v",
        "configMap": {
            "name": "cm",
            "defaultMode": 0o600,
            "items": [{"key": "b", "path": "sub/b.txt", "mode": 0o400}],
        },
    }
    assert volumes.render(vol, POD, src, ADDR) == {"sub/b.txt": File(b"two", 0o400)}


def test_missing_sources() -> None:
    src = FakeSources()
    with pytest.raises(VolumeNotReadyError, match='configmap "gone" not found'):
        volumes.render({"name": "v", "configMap": {"name": "gone"}}, POD, src, ADDR)
    assert (
        volumes.render(
            {"name": "v", "configMap": {"name": "gone", "optional": True}}, POD, src, ADDR
        )
        == {}
    )
    with pytest.raises(VolumeNotReadyError, match="non-existent config key: nokey"):
        volumes.render(
            {"name": "v", "configMap": {"name": "cm", "items": [{"key": "nokey", "path": "k"}]}},
            POD,
            src,
            ADDR,
        )
    with pytest.raises(UnsupportedVolumeError):
        volumes.render(
            {
                "name": "v",
                "configMap": {"name": "cm", "items": [{"key": "b", "path": "../escape"}]},
            },
            POD,
            src,
            ADDR,
        )


def test_secret_and_downward_api() -> None:
    src = FakeSources()
    assert volumes.render({"name": "v", "secret": {"secretName": "s"}}, POD, src, ADDR) == {
        "pw": File(b"hunter2")
    }
    vol = {
        "name": "v",
        "downwardAPI": {
            "items": [
                {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                {"path": "ip", "fieldRef": {"fieldPath": "status.podIP"}},
                {
                    "path": "mem",
                    "resourceFieldRef": {
                        "containerName": "c",
                        "resource": "limits.memory",
                        "divisor": "1Gi",
                    },
                },
            ]
        },
    }
    assert volumes.render(vol, POD, src, ADDR) == {
        "labels": File(b'app="x"'),
        "ip": File(b"10.89.1.5"),
        "mem": File(b"8"),
    }


def test_default_kube_api_access_projection() -> None:
    src = FakeSources()
    vol = {
        "name": "kube-api-access-abcde",
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {
                    "configMap": {
                        "name": "kube-root-ca.crt",
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            {
                                "path": "namespace",
                                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                            }
                        ]
                    }
                },
            ],
        },
    }
    files = volumes.render(vol, POD, src, ADDR)
    assert files == {"token": File(b"TOKEN"), "ca.crt": File(b"CERT"), "namespace": File(b"ns")}
    assert src.tokens == [("ns", "robot", "", 3607)]


def test_check_supported() -> None:
    volumes.check_supported(
        {
            "spec": {
                "volumes": [
                    {"name": "a", "emptyDir": {}},
                    {"name": "b", "hostPath": {"path": "/x"}},
                ]
            }
        }
    )
    with pytest.raises(
        UnsupportedVolumeError, match="persistentVolumeClaim volumes are not supported"
    ):
        volumes.check_supported(
            {"spec": {"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "c"}}]}}
        )
    with pytest.raises(UnsupportedVolumeError, match="clusterTrustBundle"):
        volumes.check_supported(
            {
                "spec": {
                    "volumes": [
                        {"name": "p", "projected": {"sources": [{"clusterTrustBundle": {}}]}}
                    ]
                }
            }
        )


def test_host_path_types(tmp_path: Path) -> None:
    d = tmp_path / "made" / "dir"
    assert volumes.prepare_host_path(
        {"name": "h", "hostPath": {"path": str(d), "type": "DirectoryOrCreate"}}
    ) == str(d)
    assert d.is_dir()
    f = tmp_path / "f" / "file"
    volumes.prepare_host_path({"name": "h", "hostPath": {"path": str(f), "type": "FileOrCreate"}})
    assert f.is_file()
    with pytest.raises(VolumeNotReadyError):
        volumes.prepare_host_path({"name": "h", "hostPath": {"path": str(f), "type": "Directory"}})
    with pytest.raises(UnsupportedVolumeError):
        volumes.prepare_host_path({"name": "h", "hostPath": {"path": "relative"}})


def test_sync_dir_writes_replaces_and_prunes(tmp_path: Path) -> None:
    root = tmp_path / "vol"
    assert volumes.sync_dir(root, {"a": File(b"1"), "d/b": File(b"2", 0o400)})
    assert (root / "a").read_bytes() == b"1"
    assert stat.S_IMODE((root / "d" / "b").stat().st_mode) == 0o400
    assert not volumes.sync_dir(root, {"a": File(b"1"), "d/b": File(b"2", 0o400)})
    assert volumes.sync_dir(root, {"a": File(b"changed")})
    assert (root / "a").read_bytes() == b"changed"
    assert not (root / "d").exists()
    assert sorted(p.name for p in root.iterdir()) == ["a"]

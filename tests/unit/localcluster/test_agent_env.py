"""Container env and command resolution, as kubelet does it."""

import base64

import pytest

from localcluster.agent import env
from localcluster.agent.env import ConfigError, PodAddresses

pytestmark = pytest.mark.unit

ADDR = PodAddresses(pod_ip="10.89.3.7", host_ip="10.89.3.1")


class FakeSources:
    def __init__(
        self, config_maps: dict[str, dict] | None = None, secrets: dict[str, dict] | None = None
    ) -> None:
        self.config_maps = config_maps or {}
        self.secrets = secrets or {}

    def config_map(self, namespace: str, name: str) -> dict | None:
        return self.config_maps.get(f"{namespace}/{name}")

    def secret(self, namespace: str, name: str) -> dict | None:
        return self.secrets.get(f"{namespace}/{name}")


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


POD = {
    "metadata": {
        "name": "p",
        "namespace": "ns",
        "uid": "u-1",
        "labels": {"app": "x", "tier": "web"},
        "annotations": {"a": "1"},
    },
    "spec": {"nodeName": "edge-0", "serviceAccountName": "sa"},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(A)", "1"),
        ("x-$(A)-$(B)", "x-1-two"),
        ("$$(A)", "$(A)"),
        ("$(MISSING)", "$(MISSING)"),
        ("$(A", "$(A"),
        ("cost $5", "cost $5"),
        ("trailing $", "trailing $"),
        ("", ""),
    ],
)
def test_expand(text: str, expected: str) -> None:
    values = {"A": "1", "B": "two"}
    assert env.expand(text, values.get) == expected


def test_service_env_points_at_the_forwarded_port() -> None:
    e = env.service_env(16443)
    assert e["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"
    assert e["KUBERNETES_SERVICE_PORT"] == "16443"
    assert e["KUBERNETES_PORT"] == "tcp://127.0.0.1:16443"
    assert e["KUBERNETES_PORT_16443_TCP_ADDR"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("metadata.name", "p"),
        ("metadata.namespace", "ns"),
        ("metadata.uid", "u-1"),
        ("metadata.labels['tier']", "web"),
        ("metadata.annotations['a']", "1"),
        ("metadata.labels['nope']", ""),
        ("spec.nodeName", "edge-0"),
        ("spec.serviceAccountName", "sa"),
        ("status.podIP", "10.89.3.7"),
        ("status.podIPs", "10.89.3.7"),
        ("status.hostIP", "10.89.3.1"),
    ],
)
def test_field_value(path: str, expected: str) -> None:
    assert env.field_value(POD, path, ADDR) == expected


def test_whole_label_map_only_in_volumes() -> None:
    assert env.field_value(POD, "metadata.labels", ADDR, for_volume=True) == 'app="x"\ntier="web"'
    with pytest.raises(ConfigError):
        env.field_value(POD, "metadata.labels", ADDR)


def test_container_env_order_references_and_sources() -> None:
    sources = FakeSources(
        config_maps={"ns/cm": {"data": {"K": "from-cm", "bad name": "x"}}},
        secrets={"ns/s": {"data": {"pw": b64("hunter2")}}},
    )
    container = {
        "name": "c",
        "envFrom": [
            {"configMapRef": {"name": "cm"}, "prefix": "CM_"},
            {"secretRef": {"name": "s"}},
        ],
        "env": [
            {"name": "A", "value": "a"},
            {"name": "B", "value": "$(A)-$(CM_K)-$(KUBERNETES_SERVICE_PORT)-$(LATER)"},
            {"name": "LATER", "value": "late"},
            {"name": "KEY", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "K"}}},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {
                "name": "OPT",
                "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k", "optional": True}},
            },
            {"name": "KUBERNETES_SERVICE_HOST", "value": "overridden"},
        ],
    }
    e = env.container_env(POD, container, sources, ADDR, env.service_env(16443))
    assert e["CM_K"] == "from-cm"
    assert "CM_bad name" not in e
    assert e["pw"] == "hunter2"
    assert e["B"] == "a-from-cm-16443-$(LATER)"
    assert e["KEY"] == "from-cm"
    assert e["PW"] == "hunter2"
    assert e["IP"] == "10.89.3.7"
    assert "OPT" not in e
    assert e["KUBERNETES_SERVICE_HOST"] == "overridden"
    assert e["KUBERNETES_SERVICE_PORT"] == "16443"


@pytest.mark.parametrize(
    ("var", "message"),
    [
        ({"configMapKeyRef": {"name": "nope", "key": "k"}}, 'configmap "nope" not found'),
        (
            {"configMapKeyRef": {"name": "cm", "key": "nokey"}},
            "couldn't find key nokey in ConfigMap ns/cm",
        ),
        ({"secretKeyRef": {"name": "nope", "key": "k"}}, 'secret "nope" not found'),
    ],
)
def test_missing_references_are_config_errors(var: dict, message: str) -> None:
    sources = FakeSources(config_maps={"ns/cm": {"data": {"K": "v"}}})
    container = {"name": "c", "env": [{"name": "X", "valueFrom": var}]}
    with pytest.raises(ConfigError, match=message):
        env.container_env(POD, container, sources, ADDR, {})


def test_resource_field_ref_env() -> None:
    pod = {
        **POD,
        "spec": {"containers": [{"name": "c", "resources": {"limits": {"memory": "256Mi"}}}]},
    }
    container = {
        "name": "c",
        "env": [
            {
                "name": "MEM",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
            },
            {
                "name": "CPU",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "0"}},
            },
        ],
    }
    e = env.container_env(pod, container, FakeSources(), ADDR, {})
    assert e == {"MEM": "256", "CPU": "4"}


def test_process_env_defaults_and_command_line() -> None:
    full = env.process_env({"X": "1"}, python_bin_dir="/venv/bin", home="/pod/home", hostname="p")
    assert full["PATH"].startswith("/venv/bin:/usr/local/sbin")
    assert full["HOME"] == "/pod/home"
    assert full["HOSTNAME"] == "p"
    assert (
        env.process_env({"PATH": "/only"}, python_bin_dir="/v", home="h", hostname="p")["PATH"]
        == "/only"
    )
    container = {"command": ["python", "-m", "http.server"], "args": ["--bind", "$(IP)", "$$(IP)"]}
    assert env.command_line(container, {"IP": "1.2.3.4"}) == [
        "python",
        "-m",
        "http.server",
        "--bind",
        "1.2.3.4",
        "$(IP)",
    ]


def test_no_command_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="explicit command"):
        env.command_line({"name": "c", "args": ["x"]}, {})

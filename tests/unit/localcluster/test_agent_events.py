"""Event bodies look like kubelet's."""

import pytest

from localcluster.agent.events import event_object

pytestmark = pytest.mark.unit


def test_event_about_a_container() -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"}}
    e = event_object("edge-0", pod, "Warning", "BackOff", "Back-off restarting", "c", "T")
    assert e["metadata"] == {"generateName": "p.", "namespace": "ns"}
    assert e["involvedObject"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "p",
        "namespace": "ns",
        "uid": "u",
        "fieldPath": "spec.containers{c}",
    }
    assert e["source"] == {"component": "kubelet", "host": "edge-0"}
    assert (e["type"], e["reason"], e["count"]) == ("Warning", "BackOff", 1)
    assert "fieldPath" not in event_object("n", pod, "Normal", "X", "m", "", "T")["involvedObject"]

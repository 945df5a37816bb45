"""Pod status from container states: phase, conditions, container statuses."""

import pytest

from localcluster.agent.status import (
    ContainerView,
    PodView,
    Running,
    Terminated,
    Waiting,
    container_status,
    pod_conditions,
    pod_phase,
    pod_status,
)

pytestmark = pytest.mark.unit

T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-01T00:01:00Z"


def running(name: str = "c", ready: bool = True) -> ContainerView:
    return ContainerView(
        name, "img", Running(T0), ready=ready, started=True, container_id="process://1"
    )


def done(name: str = "c", code: int = 0) -> ContainerView:
    reason = "Completed" if code == 0 else "Error"
    return ContainerView(name, "img", Terminated(code, reason, T0, T1))


def crashlooping(name: str = "c") -> ContainerView:
    return ContainerView(
        name,
        "img",
        Waiting("CrashLoopBackOff"),
        restart_count=2,
        last_state=Terminated(1, "Error", T0, T1),
    )


def view(
    containers: tuple[ContainerView, ...],
    policy: str = "Always",
    init: tuple[ContainerView, ...] = (),
) -> PodView:
    return PodView(
        init, containers, policy, host_ip="10.89.1.1", pod_ip="10.89.1.2", sandbox_ready=True
    )


@pytest.mark.parametrize(
    ("containers", "policy", "phase"),
    [
        ((ContainerView("c", "img", Waiting("ContainerCreating")),), "Always", "Pending"),
        ((running(),), "Always", "Running"),
        ((running(), done("d", 0)), "Never", "Running"),
        ((done(code=0),), "Never", "Succeeded"),
        ((done(code=3),), "Never", "Failed"),
        ((done(code=0), done("d", 1)), "Never", "Failed"),
        ((done(code=0),), "OnFailure", "Succeeded"),
        ((done(code=1),), "OnFailure", "Running"),
        ((done(code=0),), "Always", "Running"),
        ((crashlooping(),), "Always", "Running"),
        (
            (crashlooping(), ContainerView("d", "img", Waiting("ContainerCreating"))),
            "Always",
            "Pending",
        ),
    ],
)
def test_phase_follows_kubelet(
    containers: tuple[ContainerView, ...], policy: str, phase: str
) -> None:
    assert pod_phase(view(containers, policy)) == phase


def test_init_containers_gate_the_phase() -> None:
    waiting_app = (ContainerView("app", "img", Waiting("PodInitializing")),)
    assert pod_phase(view(waiting_app, init=(running("i"),))) == "Pending"
    assert pod_phase(view(waiting_app, "Never", init=(done("i", 1),))) == "Failed"
    # Under Always a failed init container is retried: still Pending.
    assert pod_phase(view(waiting_app, "Always", init=(crashlooping("i"),))) == "Pending"
    assert pod_phase(view((running("app"),), init=(done("i", 0),))) == "Running"


def test_deleted_pod_ends_terminal_whatever_the_policy() -> None:
    stopped = PodView((), (done(code=143),), "Always", host_ip="h", deleting=True)
    assert pod_phase(stopped) == "Failed"
    ok = PodView((), (done(code=0),), "Always", host_ip="h", deleting=True)
    assert pod_phase(ok) == "Succeeded"


def _by_type(conditions: list[dict[str, object]]) -> dict[object, dict[str, object]]:
    return {c["type"]: c for c in conditions}


def test_conditions_ready_when_all_containers_ready() -> None:
    conds = _by_type(pod_conditions(view((running(), running("d"))), "Running", [], T1))
    assert conds["Ready"]["status"] == "True"
    assert conds["ContainersReady"]["status"] == "True"
    assert conds["Initialized"]["status"] == "True"
    assert conds["PodReadyToStartContainers"]["status"] == "True"
    assert conds["PodScheduled"]["status"] == "True"


def test_conditions_name_unready_and_uninitialized_containers() -> None:
    v = view((ContainerView("app", "img", Waiting("PodInitializing")),), init=(running("i1"),))
    conds = _by_type(pod_conditions(v, "Pending", [], T1))
    assert conds["Initialized"]["status"] == "False"
    assert conds["Initialized"]["message"] == "containers with incomplete status: [i1]"
    assert conds["Ready"]["reason"] == "ContainersNotReady"
    assert conds["Ready"]["message"] == "containers with unready status: [app]"


def test_transition_time_kept_while_status_unchanged_and_others_kept() -> None:
    previous = [
        {"type": "Ready", "status": "True", "lastTransitionTime": T0},
        {"type": "DisruptionTarget", "status": "True", "lastTransitionTime": T0},
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": T0},
    ]
    conds = _by_type(pod_conditions(view((running(),)), "Running", previous, T1))
    assert conds["Ready"]["lastTransitionTime"] == T0
    assert conds["DisruptionTarget"]["status"] == "True"
    assert conds["PodScheduled"]["lastTransitionTime"] == T0
    conds = _by_type(pod_conditions(view((running(ready=False),)), "Running", previous, T1))
    assert conds["Ready"]["lastTransitionTime"] == T1


def test_readiness_gates_hold_ready_back() -> None:
    v = PodView((), (running(),), "Always", host_ip="h", readiness_gates=("example.com/gate",))
    conds = _by_type(pod_conditions(v, "Running", [], T1))
    assert conds["ContainersReady"]["status"] == "True"
    assert conds["Ready"]["reason"] == "ReadinessGatesNotReady"
    gate = [{"type": "example.com/gate", "status": "True"}]
    assert _by_type(pod_conditions(v, "Running", gate, T1))["Ready"]["status"] == "True"


def test_terminal_pod_is_not_ready_with_reason() -> None:
    conds = _by_type(pod_conditions(view((done(),), "Never"), "Succeeded", [], T1))
    assert conds["Ready"] == {
        "type": "Ready",
        "status": "False",
        "reason": "PodCompleted",
        "lastProbeTime": None,
        "lastTransitionTime": T1,
    }


def test_container_status_shapes() -> None:
    s = container_status(crashlooping())
    assert s["state"] == {"waiting": {"reason": "CrashLoopBackOff"}}
    assert s["lastState"]["terminated"]["exitCode"] == 1
    assert s["restartCount"] == 2
    assert "containerID" not in s
    killed = ContainerView("c", "img", Terminated(137, "Error", T0, T1, "bye", 9, "process://7"))
    term = container_status(killed)["state"]["terminated"]
    assert term == {
        "exitCode": 137,
        "signal": 9,
        "reason": "Error",
        "message": "bye",
        "startedAt": T0,
        "finishedAt": T1,
        "containerID": "process://7",
    }
    assert container_status(running())["state"] == {"running": {"startedAt": T0}}


def test_pod_status_keeps_terminal_phase_and_qos() -> None:
    v = view((running(),))
    status = pod_status(v, {"phase": "Failed", "qosClass": "Burstable"}, T1)
    assert status["phase"] == "Failed"
    assert status["qosClass"] == "Burstable"
    assert status["podIPs"] == [{"ip": "10.89.1.2"}]
    assert status["hostIP"] == "10.89.1.1"
    assert "initContainerStatuses" not in status

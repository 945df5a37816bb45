"""Pod status from recorded container states, by kubelet's rules (pure).

The pod worker records what its containers did (`ContainerView`s); this module
turns that into the `status` the API shows: phase, conditions and container statuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

# The conditions kubelet owns; any other condition on the pod is kept as it is.
OWN_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready")
TERMINAL_PHASES = ("Succeeded", "Failed")


@dataclass(frozen=True)
class Waiting:
    """Not running yet (or between restarts): kubelet's `waiting` state."""

    reason: str
    message: str = ""


@dataclass(frozen=True)
class Running:
    """Running since `started_at`."""

    started_at: str


@dataclass(frozen=True)
class Terminated:
    """Exited (or killed)."""

    exit_code: int
    reason: str
    started_at: str
    finished_at: str
    message: str = ""
    signal: int = 0
    container_id: str = ""


State = Waiting | Running | Terminated


@dataclass(frozen=True)
class ContainerView:
    """What the agent knows about one container."""

    name: str
    image: str
    state: State
    restart_count: int = 0
    last_state: Terminated | None = None
    ready: bool = False
    started: bool = False
    container_id: str = ""


@dataclass(frozen=True)
class PodView:
    """What the agent knows about one pod."""

    init_containers: tuple[ContainerView, ...]
    containers: tuple[ContainerView, ...]
    restart_policy: str
    host_ip: str
    pod_ip: str = ""
    start_time: str = ""
    sandbox_ready: bool = False
    qos_class: str = "BestEffort"
    readiness_gates: tuple[str, ...] = ()
    deleting: bool = False  # being deleted, its containers stopped for good


def state_dict(state: State | None) -> Obj:
    """A container state as the API shows it (`{"running": {...}}` etc.)."""
    if state is None:
        return {}
    if isinstance(state, Waiting):
        waiting: Obj = {"reason": state.reason}
        if state.message:
            waiting["message"] = state.message
        return {"waiting": waiting}
    if isinstance(state, Running):
        return {"running": {"startedAt": state.started_at}}
    terminated: Obj = {
        "exitCode": state.exit_code,
        "reason": state.reason,
        "startedAt": state.started_at,
        "finishedAt": state.finished_at,
    }
    if state.signal:
        terminated["signal"] = state.signal
    if state.message:
        terminated["message"] = state.message
    if state.container_id:
        terminated["containerID"] = state.container_id
    return {"terminated": terminated}


def container_status(view: ContainerView) -> Obj:
    """One entry of `containerStatuses` / `initContainerStatuses`."""
    status: Obj = {
        "name": view.name,
        "image": view.image,
        "imageID": f"process://{view.image}" if view.image else "",
        "ready": view.ready,
        "started": view.started,
        "restartCount": view.restart_count,
        "state": state_dict(view.state),
        "lastState": state_dict(view.last_state),
    }
    if view.container_id:
        status["containerID"] = view.container_id
    return status


def pod_phase(view: PodView) -> str:
    """The pod phase, as kubelet's getPhase computes it."""
    pending_init = 0
    failed_init = 0
    for c in view.init_containers:
        s = c.state
        if isinstance(s, Terminated):
            failed_init += s.exit_code != 0
        elif isinstance(s, Waiting) and c.last_state is not None:
            failed_init += c.last_state.exit_code != 0
        else:
            pending_init += 1
    if failed_init and view.restart_policy == "Never":
        return "Failed"
    running = waiting = stopped = succeeded = 0
    for c in view.containers:
        s = c.state
        if isinstance(s, Running):
            running += 1
        elif isinstance(s, Terminated):
            stopped += 1
            succeeded += s.exit_code == 0
        elif c.last_state is not None:
            stopped += 1  # waiting to restart after a termination
        else:
            waiting += 1
    if pending_init or waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if view.deleting:
            # A deleted pod whose containers were stopped ends terminal, whatever its policy.
            return "Succeeded" if stopped == succeeded else "Failed"
        if view.restart_policy == "Always":
            return "Running"  # every container is about to be restarted
        if stopped == succeeded:
            return "Succeeded"
        if view.restart_policy == "Never":
            return "Failed"
        return "Running"  # OnFailure: the failed ones restart
    return "Pending"


def _names(views: tuple[ContainerView, ...]) -> str:
    return "[" + " ".join(v.name for v in views) + "]"


def _desired_conditions(
    view: PodView, phase: str, previous: list[Obj]
) -> list[tuple[str, bool, str, str]]:
    """(type, status, reason, message) for each condition kubelet owns."""
    out: list[tuple[str, bool, str, str]] = [
        ("PodReadyToStartContainers", view.sandbox_ready, "", ""),
    ]
    incomplete = tuple(
        c
        for c in view.init_containers
        if not (isinstance(c.state, Terminated) and c.state.exit_code == 0)
    )
    if incomplete and phase != "Succeeded":
        out.append(
            (
                "Initialized",
                False,
                "ContainersNotInitialized",
                f"containers with incomplete status: {_names(incomplete)}",
            )
        )
    else:
        out.append(("Initialized", True, "", ""))
    if phase in TERMINAL_PHASES:
        reason = "PodCompleted" if phase == "Succeeded" else "PodFailed"
        out.append(("ContainersReady", False, reason, ""))
        out.append(("Ready", False, reason, ""))
        return out
    unready = tuple(c for c in view.containers if not c.ready)
    if unready:
        msg = f"containers with unready status: {_names(unready)}"
        out.append(("ContainersReady", False, "ContainersNotReady", msg))
        out.append(("Ready", False, "ContainersNotReady", msg))
        return out
    out.append(("ContainersReady", True, "", ""))
    have = {c.get("type"): c.get("status") for c in previous}
    missing = [g for g in view.readiness_gates if have.get(g) != "True"]
    if missing:
        msg = (
            "corresponding condition of pod readiness gate "
            + ", ".join(f'"{g}"' for g in missing)
            + " does not exist or is not True."
        )
        out.append(("Ready", False, "ReadinessGatesNotReady", msg))
    else:
        out.append(("Ready", True, "", ""))
    return out


def pod_conditions(view: PodView, phase: str, previous: list[Obj], now: str) -> list[Obj]:
    """The pod's conditions: kubelet's own, recomputed, and everyone else's, kept.

    A condition whose status did not change keeps its lastTransitionTime.
    """
    before = {c.get("type"): c for c in previous}
    out: list[Obj] = []
    for ctype, ok, reason, message in _desired_conditions(view, phase, previous):
        status = "True" if ok else "False"
        old = before.get(ctype) or {}
        cond: Obj = {
            "type": ctype,
            "status": status,
            "lastProbeTime": None,
            "lastTransitionTime": old.get("lastTransitionTime", now)
            if old.get("status") == status
            else now,
        }
        if reason:
            cond["reason"] = reason
        if message:
            cond["message"] = message
        out.append(cond)
    if "PodScheduled" not in before:
        out.insert(
            0,
            {
                "type": "PodScheduled",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": now,
            },
        )
    others = [c for c in previous if c.get("type") not in OWN_CONDITIONS]
    return others + out


def pod_status(view: PodView, previous: Obj, now: str) -> Obj:
    """The status kubelet would write; `previous` gives condition times and a terminal phase."""
    phase = pod_phase(view)
    if previous.get("phase") in TERMINAL_PHASES:
        phase = previous["phase"]  # a terminal phase never changes
    status: Obj = {
        "phase": phase,
        "conditions": pod_conditions(view, phase, list(previous.get("conditions") or []), now),
        "hostIP": view.host_ip,
        "hostIPs": [{"ip": view.host_ip}],
        # The API server sets qosClass at creation and refuses changes: keep its value.
        "qosClass": previous.get("qosClass") or view.qos_class,
        "containerStatuses": [container_status(c) for c in view.containers],
    }
    if view.init_containers:
        status["initContainerStatuses"] = [container_status(c) for c in view.init_containers]
    if view.pod_ip:
        status["podIP"] = view.pod_ip
        status["podIPs"] = [{"ip": view.pod_ip}]
    if view.start_time:
        status["startTime"] = view.start_time
    return status

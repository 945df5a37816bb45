"""What a pod worker needs from its node: identity, API client, paths, online flag, addresses."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from localcluster.agent import network
from localcluster.agent.kube import Kube


@dataclass
class NodeContext:
    """One simulated node as its pods see it (shared by the node's threads)."""

    name: str
    index: int
    kube: Kube
    state_dir: Path
    forward_ports: tuple[int, ...]
    python_bin_dir: str
    online: threading.Event = field(default_factory=threading.Event)
    _ips: dict[str, int] = field(default_factory=dict)
    _last_ip: int | None = None
    """The host number last given out (round-robin allocation)."""
    _ip_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def node_dir(self) -> Path:
        """DIR/nodes/<name>: the offline flag and the pod dirs live here."""
        return self.state_dir / "nodes" / self.name

    @property
    def pods_dir(self) -> Path:
        """Where each pod gets its `<ns>_<name>_<uid>` dir."""
        return self.node_dir / "pods"

    @property
    def offline_flag(self) -> Path:
        """The file whose existence means the node is cut off."""
        return self.node_dir / "offline"

    @property
    def host_ip(self) -> str:
        """The node's InternalIP (its bridge address)."""
        return network.gateway_ip(self.index)

    @property
    def mountpoint_record(self) -> Path:
        """Mount points the launchers had to create on the host, for cleanup."""
        return self.state_dir / "created-mountpoints.txt"

    def is_online(self) -> bool:
        """Whether the node can reach the API (not simulated offline)."""
        return self.online.is_set()

    def claim_ip(self, uid: str, preferred: int | None) -> int:
        """A host number for the pod: its earlier one if still free, else the next free
        one after the last given out (round robin, so a freed address rests)."""
        with self._ip_lock:
            if uid in self._ips:
                return self._ips[uid]
            taken = set(self._ips.values())
            octet = (
                preferred
                if preferred is not None
                and network.FIRST_POD_OCTET <= preferred <= network.LAST_POD_OCTET
                and preferred not in taken
                else network.allocate_octet(taken, self._last_ip)
            )
            self._ips[uid] = octet
            self._last_ip = octet
            return octet

    def release_ip(self, uid: str) -> None:
        """Give the pod's address back."""
        with self._ip_lock:
            self._ips.pop(uid, None)

"""Node bridges and pod network namespaces, plumbed with iproute2.

Node N owns 10.89.N.0/24 on bridge `emlbrN` (10.89.N.1 is its InternalIP and the
pods' gateway); each pod gets netns `emlp-<uid8>` with `eth0` on that bridge.

Pods reach pods on other nodes, as Kubernetes' network model requires (the operator,
itself a pod, reads the inference pods' /metrics by pod IP): the host forwards between
the bridges only. Forwarding is switched on per bridge (the global ip_forward stays as
it is), and policy rules send every packet from a pod address or arriving on a bridge
to routing table POD_TABLE, which holds the bridges' subnets and an `unreachable`
default: nothing a pod sends can leave the machine. Packets *to* the simulated pod
ranges (the process nodes' 10.89.0.0/16 and the KWOK pods' fake KWOK_POD_CIDR) go
through the same table, so a client or the operator that reads a KWOK pod's address
meets `unreachable` at once instead of sending it out of the machine's default route.
"""

from __future__ import annotations

import subprocess
from collections.abc import Collection, Sequence

from localcluster.agent import log

SUBNET = "10.89"
FIRST_POD_OCTET = 2
LAST_POD_OCTET = 254
NETNS_DIR = "/run/netns"
POD_TABLE = "4242"
POD_SOURCES = f"{SUBNET}.0.0/16"
KWOK_POD_CIDR = "10.90.0.0/16"
"""The addresses KWOK gives its simulated pods (nothing answers them)."""
POD_DESTINATIONS = (POD_SOURCES, KWOK_POD_CIDR)


class NetworkError(Exception):
    """An `ip` command failed, or a node's subnet is full."""


def bridge_name(index: int) -> str:
    """The node's bridge link."""
    return f"emlbr{index}"


def gateway_ip(index: int) -> str:
    """The node's address on its bridge: its InternalIP and its pods' default gateway."""
    return f"{SUBNET}.{index}.1"


def subnet(index: int) -> str:
    """The node's pod subnet."""
    return f"{SUBNET}.{index}.0/24"


def pod_ip(index: int, octet: int) -> str:
    """A pod address on node `index`."""
    return f"{SUBNET}.{index}.{octet}"


def netns_name(uid: str) -> str:
    """The pod's network namespace."""
    return f"emlp-{uid[:8]}"


def netns_path(name: str) -> str:
    """Where `ip netns add` pins a namespace (setns opens this)."""
    return f"{NETNS_DIR}/{name}"


def host_veth(uid: str) -> str:
    """The host end of the pod's veth pair (on the bridge)."""
    return f"emlv{uid[:8]}"


def allocate_octet(used: Collection[int], after: int | None = None) -> int:
    """The first free host number (2..254) in a node's subnet after `after`, wrapping
    round (as CNI's host-local IPAM does): an address just given back is the last to be
    given out again. The lowest free one without `after`."""
    span = list(range(FIRST_POD_OCTET, LAST_POD_OCTET + 1))
    if after is not None and FIRST_POD_OCTET <= after <= LAST_POD_OCTET:
        start = span.index(after) + 1
        span = span[start:] + span[:start]
    for octet in span:
        if octet not in used:
            return octet
    raise NetworkError("no free pod address: the node's /24 is full")


def ip(args: Sequence[str], who: str, *, check: bool = True) -> bool:
    """Run `ip ARGS`; log stderr on failure, and raise if `check`."""
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if proc.returncode == 0:
        return True
    message = f"ip {' '.join(args)}: {proc.stderr.strip() or f'exit {proc.returncode}'}"
    if check:
        raise NetworkError(message)
    log.warn(who, message)
    return False


def _quiet(args: Sequence[str]) -> bool:
    """Run a quiet `ip` query; True if it succeeded."""
    return subprocess.run(["ip", *args], capture_output=True, check=False).returncode == 0


def link_exists(name: str) -> bool:
    """Whether a link of this name exists in the root namespace."""
    return _quiet(["link", "show", "dev", name])


def netns_exists(name: str) -> bool:
    """Whether a network namespace of this name is pinned."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return any(line.split()[0] == name for line in out.stdout.splitlines() if line.strip())


def ensure_bridge(index: int, who: str) -> None:
    """Create (or reuse, after a crash) the node's bridge with its gateway address, up.

    A catch-all `unreachable` route for the subnet (high metric) keeps traffic
    to the node's pods from ever taking the default route while the bridge is down.
    """
    br = bridge_name(index)
    if not link_exists(br):
        ip(["link", "add", br, "type", "bridge"], who)
    addrs = subprocess.run(
        ["ip", "-o", "-4", "addr", "show", "dev", br], capture_output=True, text=True, check=False
    ).stdout
    if f"{gateway_ip(index)}/24" not in addrs:
        ip(["addr", "add", f"{gateway_ip(index)}/24", "dev", br], who)
    ip(["link", "set", br, "up"], who)
    ip(["route", "replace", "unreachable", subnet(index), "metric", "4242"], who)
    _ensure_pod_table(who)
    # By the bridge a packet came in on too: a pod that spoofs another source still
    # meets the unreachable default.
    rules = subprocess.run(["ip", "rule", "show"], capture_output=True, text=True, check=False)
    if f"iif {br} lookup {POD_TABLE}" not in rules.stdout:
        ip(["rule", "add", "iif", br, "lookup", POD_TABLE, "priority", POD_TABLE], who)
    with open(f"/proc/sys/net/ipv4/conf/{br}/forwarding", "w") as flag:
        flag.write("1")
    ip(["route", "replace", subnet(index), "dev", br, "table", POD_TABLE], who)


def _ensure_pod_table(who: str) -> None:
    """The policy rule and the table's unreachable default (idempotent)."""
    ip(["route", "replace", "unreachable", "default", "table", POD_TABLE], who)
    rules = subprocess.run(["ip", "rule", "show"], capture_output=True, text=True, check=False)
    if f"from {POD_SOURCES} lookup {POD_TABLE}" not in rules.stdout:
        ip(["rule", "add", "from", POD_SOURCES, "lookup", POD_TABLE, "priority", POD_TABLE], who)
    for destination in POD_DESTINATIONS:
        if f"to {destination} lookup {POD_TABLE}" not in rules.stdout:
            ip(["rule", "add", "to", destination, "lookup", POD_TABLE, "priority", POD_TABLE], who)


def set_bridge_up(index: int, up: bool, who: str) -> None:
    """Cut (down) or restore (up) the node's network."""
    ip(["link", "set", bridge_name(index), "up" if up else "down"], who)
    if up:  # the kernel dropped the bridge's pod-table route when the link went down
        ip(["route", "replace", subnet(index), "dev", bridge_name(index), "table", POD_TABLE], who)


def delete_bridge(index: int, who: str) -> None:
    """Remove the node's bridge and its safety route (and, with the last bridge, the
    pod routing table and its rule)."""
    if link_exists(bridge_name(index)):
        ip(["link", "delete", bridge_name(index)], who, check=False)
    _quiet(["rule", "delete", "iif", bridge_name(index), "lookup", POD_TABLE])
    # Absent after a partial start: nothing to report then.
    _quiet(["route", "delete", "unreachable", subnet(index), "metric", "4242"])
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    if "emlbr" not in links:
        _quiet(["rule", "delete", "from", POD_SOURCES, "lookup", POD_TABLE])
        for destination in POD_DESTINATIONS:
            _quiet(["rule", "delete", "to", destination, "lookup", POD_TABLE])
        _quiet(["route", "flush", "table", POD_TABLE])


def setup_pod(uid: str, index: int, octet: int, who: str) -> None:
    """Create the pod's netns with eth0 = 10.89.index.octet/24 on the node's bridge.

    Anything left under the same names (a crashed run) is removed first.
    """
    ns = netns_name(uid)
    teardown_pod(uid, who)
    peer = f"emlq{uid[:8]}"  # temporary name: the pod end is renamed eth0 inside the netns
    try:
        ip(["netns", "add", ns], who)
        ip(["link", "add", host_veth(uid), "type", "veth", "peer", "name", peer, "netns", ns], who)
        ip(["link", "set", host_veth(uid), "master", bridge_name(index), "up"], who)
        ip(["-n", ns, "link", "set", peer, "name", "eth0"], who)
        ip(["-n", ns, "addr", "add", f"{pod_ip(index, octet)}/24", "dev", "eth0"], who)
        ip(["-n", ns, "link", "set", "eth0", "up"], who)
        ip(["-n", ns, "link", "set", "lo", "up"], who)
        ip(["-n", ns, "route", "add", "default", "via", gateway_ip(index)], who)
        # The address may have been a deleted pod's seconds ago: the host's neighbour
        # entry would still name that pod's MAC, and packets would go nowhere until it
        # expired (up to ~30 s). Forget it, so the first packet asks anew.
        ip(["neigh", "flush", "to", pod_ip(index, octet)], who, check=False)
    except NetworkError:
        teardown_pod(uid, who)
        raise


def teardown_pod(uid: str, who: str) -> None:
    """Remove the pod's netns (its veth pair goes with it) and any stray host end."""
    ns = netns_name(uid)
    if netns_exists(ns):
        ip(["netns", "delete", ns], who, check=False)
    if link_exists(host_veth(uid)):
        ip(["link", "delete", host_veth(uid)], who, check=False)

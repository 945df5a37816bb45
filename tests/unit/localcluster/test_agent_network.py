"""Names and address allocation of the node and pod networks."""

import pytest

from localcluster.agent import network
from localcluster.agent.network import NetworkError, allocate_octet

pytestmark = pytest.mark.unit


def test_names_fit_linux_interface_limits() -> None:
    uid = "23ff1ada-ca0b-4aa1-8f14-51550c97775d"
    assert network.netns_name(uid) == "emlp-23ff1ada"
    assert network.host_veth(uid) == "emlv23ff1ada"
    assert network.bridge_name(200) == "emlbr200"
    for name in (network.host_veth(uid), network.bridge_name(200)):
        assert len(name) <= 15


def test_addresses() -> None:
    assert network.gateway_ip(7) == "10.89.7.1"
    assert network.subnet(7) == "10.89.7.0/24"
    assert network.pod_ip(7, 2) == "10.89.7.2"


def test_allocate_lowest_free() -> None:
    assert allocate_octet(set()) == 2
    assert allocate_octet({2, 3, 5}) == 4
    assert allocate_octet(set(range(2, 254))) == 254


def test_allocate_full_subnet() -> None:
    with pytest.raises(NetworkError):
        allocate_octet(set(range(2, 255)))


def test_addresses_are_given_out_round_robin_so_a_freed_one_rests() -> None:
    # A pod deleted a moment ago leaves its MAC in the host's neighbour cache: its
    # address is handed out again only after every other one.
    assert allocate_octet({2}, after=2) == 3
    assert allocate_octet(set(), after=5) == 6
    assert allocate_octet({2, 3}, after=254) == 4  # wraps round
    assert allocate_octet(set(range(3, 255)), after=100) == 2

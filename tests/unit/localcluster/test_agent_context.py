"""Per-node address claims: a pod keeps its earlier address when it is still free."""

from pathlib import Path
from typing import Any, cast

import pytest

from localcluster.agent.context import NodeContext

pytestmark = pytest.mark.unit


def ctx() -> NodeContext:
    return NodeContext("n", 3, cast(Any, None), Path("/tmp/x"), (16443,), "/venv/bin")


def test_claims_keep_preferred_addresses_and_release() -> None:
    c = ctx()
    assert c.claim_ip("a", 7) == 7
    assert c.claim_ip("a", None) == 7  # idempotent
    assert c.claim_ip("b", 7) == 8  # taken: the next free after the last given out
    assert c.claim_ip("c", None) == 9
    assert c.claim_ip("d", 999) == 10  # out of range: ignored
    c.release_ip("b")
    assert c.claim_ip("e", None) == 11  # a freed address rests (round robin)
    assert c.claim_ip("b", 8) == 8  # a pod that comes back may have its own again
    assert c.host_ip == "10.89.3.1"
    assert c.offline_flag == Path("/tmp/x/nodes/n/offline")

"""The demo's canary props: client traffic to the edge pods, and a version that fails.

    PYTHONPATH=hack:operator:tests .venv/bin/python hack/demo_canary.py traffic NS DEPLOYMENT MODEL
    PYTHONPATH=hack:operator:tests .venv/bin/python hack/demo_canary.py bad-version NS MODEL

`traffic` plays the edge clients: single-row inference requests to every ready pod of
the deployment until killed, or until the process that started it is gone (a demo
interrupted by a signal that skips its EXIT trap must not leave clients behind: they
would go on sending requests to pod addresses that no longer exist). `bad-version`
registers, next to the EdgeModel's champion, a version whose ONNX graph loads but fails
every single-row request (a broken export), and prints its version number. Both use
the test suite's helpers, so the demo exercises what `tests/e2e/test_rollout.py` asserts.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from kubernetes import client, config

from localcluster.settings import Settings
from support.models import Trained, register_failing
from support.rollout import GROUP, VERSION, traffic

FEATURES = 8  # the demo's vibration dataset
PARENT_CHECK_SECONDS = 0.5


def main(argv: list[str]) -> int:
    """Run one of the two props; see the module doc."""
    config.load_kube_config()
    api = client.ApiClient()
    if argv[:1] == ["traffic"] and len(argv) == 4:
        _, namespace, deployment, model = argv
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        parent = int(os.environ.get("EDGEML_PROP_PARENT") or os.getppid())
        with traffic(client.CoreV1Api(api), namespace, deployment, model, FEATURES):
            # An orphan is re-parented (to init or a subreaper): then the demo is gone.
            while not stop.wait(PARENT_CHECK_SECONDS) and os.getppid() == parent:
                pass
        return 0
    if argv[:1] == ["bad-version"] and len(argv) == 3:
        _, namespace, model = argv
        obj = client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, "edgemodels", model
        )
        status = obj.get("status") or {}
        champion = status["champion"]
        of = Trained(int(champion["version"]), champion["sha256"], champion["runId"])
        bad = register_failing(status["registeredModel"], Settings().mlflow_uri, of, FEATURES)
        print(bad.version)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The demo's closed loop, followed stage by stage: drift → TrainingRun → fair comparison →
champion → rollout → drift cleared.

    PYTHONPATH=hack:operator:tests .venv/bin/python hack/demo_loop.py \
        season CSV NS KEY | follow NS POLICY MODEL DEPLOYMENT [TIMEOUT_S]

`season` writes the next season's data (other informative directions, two inputs
moved) to CSV (the demo's clients send its rows), lands it in the local cluster's object
store as s3://edgeml/KEY, and applies the Secret `dataset-keys` (the store's keys,
labelled for the operator) in NS. `follow` prints each stage with its time since the
start and exits 0 when drift has cleared on the new champion, 1 when a stage fails or
TIMEOUT_S (default 420) passes. It reads the objects through the API server and changes nothing.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
from kubernetes import client, config
from sklearn.datasets import make_classification

from localcluster import objectstore
from localcluster.settings import S3_BUCKET, Settings

GROUP, VERSION = "edgeml.io", "v1alpha1"
FEATURES = 8


def season(csv: Path, namespace: str, key: str) -> None:
    """Next season: the demo's 8 features, other informative directions, f0 and f1 moved."""
    x, y = make_classification(2000, FEATURES, n_informative=5, random_state=17)
    x[:, :2] += 2.5
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(FEATURES)])
    frame["label"] = y
    frame.to_csv(csv, index=False)
    settings = Settings()
    etag = objectstore.client(settings).put_object(
        Bucket=S3_BUCKET, Key=key, Body=csv.read_bytes()
    )["ETag"]
    config.load_kube_config()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "dataset-keys",
            "namespace": namespace,
            "labels": {"edgeml.io/dataset-credentials": "true"},
        },
        "stringData": objectstore.secret_data(),
    }
    core = client.CoreV1Api()
    try:
        core.create_namespaced_secret(namespace, secret)
    except client.ApiException as err:
        if err.status != 409:
            raise
        core.replace_namespaced_secret("dataset-keys", namespace, secret)
    print(f"next season's data: {len(frame)} rows landed in s3://{S3_BUCKET}/{key} "
          f"(ETag {etag}) on {settings.s3_endpoint}")  # fmt: skip


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(
        (c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == kind), {}
    )


def follow(namespace: str, policy: str, model: str, deployment: str, timeout: float) -> int:
    """Print the loop's stages as they happen; 0 once drift has cleared on the new champion."""
    config.load_kube_config()
    api = client.CustomObjectsApi()

    def get(plural: str, name: str) -> dict[str, Any]:
        return dict(api.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name))

    def runs() -> list[dict[str, Any]]:
        found = api.list_namespaced_custom_object(
            GROUP, VERSION, namespace, "trainingruns",
            label_selector=f"edgeml.io/drift-policy={policy}",
        )  # fmt: skip
        return list(found["items"])

    start = time.monotonic()
    champion = (get("edgemodels", model).get("status") or {}).get("champion", {}).get("version")
    state: dict[str, Any] = {}

    def say(text: str) -> None:
        print(f"  {time.monotonic() - start:5.0f} s  {text}", flush=True)

    def drifted() -> str | None:
        c = _condition(get("driftpolicies", policy), "Drifted")
        return (
            f"drift detected: {c.get('message', '')[:160]}" if c.get("status") == "True" else None
        )

    def created() -> str | None:
        found = runs()
        if not found:
            return None
        state["run"] = found[0]["metadata"]["name"]
        return (f"TrainingRun {state['run']} created (trigger {found[0]['spec']['trigger']}, "
                f"id {found[0]['metadata']['labels'].get('edgeml.io/trigger-id')})")  # fmt: skip

    def trained() -> str | None:
        status = get("trainingruns", state["run"]).get("status") or {}
        if status.get("phase") == "Failed":
            raise RuntimeError(f"the retrain failed: {status.get('failureReason')}")
        if status.get("phase") != "Succeeded":
            return None
        state["version"] = status.get("modelVersion")
        m = status.get("metrics") or {}
        fair = (f"; the champion on the same held-out rows: f1 {m['champion.f1']:.3f}"
                if "champion.f1" in m else "")  # fmt: skip
        return f"trained version {state['version']}: f1 {m.get('f1', 0):.3f}{fair}"

    def promoted() -> str | None:
        status = get("edgemodels", model).get("status") or {}
        candidate = status.get("candidate") or {}
        if candidate.get("version") == state["version"] and candidate.get("outcome") == "Rejected":
            raise RuntimeError(
                f"version {state['version']} was rejected: {candidate.get('message')}"
            )
        if (status.get("champion") or {}).get("version") != state["version"]:
            return None
        why = candidate.get("message", "")[:140]
        return f"champion: version {champion} -> {state['version']} ({why})"

    def rolled_out() -> str | None:
        status = get("edgedeployments", deployment).get("status") or {}
        if state["version"] in (status.get("rejectedVersions") or []):
            raise RuntimeError(f"version {state['version']} was rolled back")
        stable = status.get("stable") or {}
        if status.get("phase") != "Healthy" or stable.get("version") != state["version"]:
            return None
        return f"rolled out in waves: {stable.get('ready')} nodes serve version {state['version']}"

    def cleared() -> str | None:
        c = _condition(get("driftpolicies", policy), "Drifted")
        return (
            f"drift cleared: {c.get('message', '')[:160]}" if c.get("status") == "False" else None
        )

    stages = [("drift", drifted), ("run", created), ("trained", trained),
              ("promoted", promoted), ("rolled out", rolled_out), ("cleared", cleared)]  # fmt: skip
    for _, check in stages:
        while True:
            if time.monotonic() - start > timeout:
                say(f"timed out after {timeout:.0f} s")
                return 1
            try:
                done = check()
            except RuntimeError as err:
                say(str(err))
                return 1
            except client.ApiException:
                done = None
            if done:
                say(done)
                break
            time.sleep(1)
    say("the loop closed")
    return 0


def main(argv: list[str]) -> int:
    """The demo's entry point (see the module doc)."""
    if argv[:1] == ["season"] and len(argv) == 4:
        season(Path(argv[1]), argv[2], argv[3])
        return 0
    if argv[:1] == ["follow"] and len(argv) in (5, 6):
        timeout = float(argv[5]) if len(argv) == 6 else 420.0
        return follow(argv[1], argv[2], argv[3], argv[4], timeout)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

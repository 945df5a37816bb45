"""`hack/images check`: run a built image the way its pods do, and prove it works.

An image tar unpacked with umoci into an OCI bundle runs under runc as the image's user
(uid 65532), on a read-only root filesystem with only a tmpfs /tmp writable and no
capabilities, in the host's network namespace so a check can talk to it on loopback:

    python3 hack/images.py check NAME --bundle DIR [--arch amd64|arm64] [--workdir DIR]

Each image: `edgeml --help`, the uid, a write to the root refused, one to /tmp allowed.
The operator: `edgeml run --help`. The training image: its ML imports, `edgeml train
--help`, and a small scikit-learn model converted to ONNX, written to the work dir. The
serving image: its imports (the server and the model fetch's MLflow client), `edgeml
serve` on that model and one inference request on loopback; with --model-uri (and
MLFLOW_TRACKING_URI set), also the fetch child downloading and verifying that version:

    MLFLOW_TRACKING_URI=http://127.0.0.1:5000 hack/images check serving \
        --model-uri models:/NAME/VERSION
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

UID = 65532
FEATURES = 6
MODEL_NAME = "check"

TRAIN_SCRIPT = f"""
import numpy as np
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression
rng = np.random.default_rng(5)
x = rng.normal(size=(200, {FEATURES})).astype(np.float32)
y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
model = LogisticRegression().fit(x, y)
onx = to_onnx(model, x[:1], options={{"zipmap": False}}, target_opset=17)
open("/work/model.onnx", "wb").write(onx.SerializeToString())
print("wrote model.onnx", len(onx.SerializeToString()), "bytes")
"""

PROBE_SCRIPT = f"""
import os, sys
assert (os.getuid(), os.getgid()) == ({UID}, {UID}), (os.getuid(), os.getgid())
try:
    open(os.path.join(sys.prefix, "written"), "w")
except OSError as err:
    assert err.errno == 30, err  # EROFS
else:
    raise SystemExit("the root filesystem is writable")
open("/tmp/written", "w").write("ok")
print("uid", os.getuid(), "gid", os.getgid(), "read-only root, writable /tmp, python",
      sys.version.split()[0], sys.executable)
"""


@dataclass(frozen=True)
class Mount:
    """A bind mount into the container."""

    source: Path
    destination: str
    writable: bool = False


@dataclass
class Bundle:
    """An unpacked OCI bundle whose config.json each run rewrites."""

    path: Path
    emulated: bool = False
    """Run under qemu-user: no /sys (onnxruntime's cpuinfo, reading the host's sysfs
    through qemu, spins forever; without sysfs it warns and goes on)."""
    base: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.base = json.loads((self.path / "config.json").read_text())

    def configure(
        self, args: Sequence[str], mounts: Sequence[Mount] = (), env: Sequence[str] = ()
    ) -> None:
        """config.json for one process: read-only root, tmpfs /tmp, host network."""
        config = json.loads(json.dumps(self.base))
        process = config["process"]
        process["args"] = list(args)
        process["env"] = [*process.get("env", []), *env]
        process["terminal"] = False
        process["user"] = {"uid": UID, "gid": UID}
        process["noNewPrivileges"] = True
        sets = ("bounding", "effective", "inheritable", "permitted", "ambient")
        process["capabilities"] = {key: [] for key in sets}
        config["root"] = {"path": "rootfs", "readonly": True}
        linux = config.setdefault("linux", {})
        linux["namespaces"] = [
            ns for ns in linux.get("namespaces", []) if ns.get("type") != "network"
        ]
        dropped = {"/tmp", "/sys"} if self.emulated else {"/tmp"}
        config["mounts"] = [
            m for m in config.get("mounts", []) if m.get("destination") not in dropped
        ] + [
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "nodev", "mode=1777", "size=256m"]},
            *(
                {"destination": m.destination, "type": "bind", "source": str(m.source),
                 "options": ["rbind", "rw" if m.writable else "ro"]}
                for m in mounts
            ),
        ]  # fmt: skip
        (self.path / "config.json").write_text(json.dumps(config, indent=2))

    def run(
        self,
        args: Sequence[str],
        mounts: Sequence[Mount] = (),
        env: Sequence[str] = (),
        timeout: float = 300,
    ) -> str:
        """Run `args` to completion; its output, or SystemExit with it."""
        self.configure(args, mounts, env)
        name = f"edgeml-check-{uuid.uuid4().hex[:8]}"
        done = subprocess.run(
            ["runc", "run", "--bundle", str(self.path), name],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        output = done.stdout + done.stderr
        if done.returncode != 0:
            raise SystemExit(f"`{' '.join(args)}` exited {done.returncode}:\n{output}")
        return output

    def start(self, args: Sequence[str], mounts: Sequence[Mount] = ()) -> subprocess.Popen[str]:
        """Start `args` in the background; the caller stops it."""
        self.configure(args, mounts)
        name = f"edgeml-check-{uuid.uuid4().hex[:8]}"
        return subprocess.Popen(
            ["runc", "run", "--bundle", str(self.path), name],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip


def say(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def first_line(text: str) -> str:
    return next((line for line in text.splitlines() if line.strip()), "")


def check_common(bundle: Bundle) -> None:
    say("edgeml --help: " + first_line(bundle.run(["edgeml", "--help"])))
    say(first_line(bundle.run(["python", "-c", PROBE_SCRIPT])))


def check_operator(bundle: Bundle, workdir: Path, model_uri: str | None) -> None:
    say("edgeml run --help: " + first_line(bundle.run(["edgeml", "run", "--help"])))
    absent = bundle.run(["python", "-c", (
        "import importlib.util as u; print([m for m in ('mlflow', 'sklearn', 'onnxruntime', "
        "'numpy', 'kubernetes') if u.find_spec(m)])"
    )]).strip()  # fmt: skip
    if absent != "[]":
        raise SystemExit(f"the operator image holds what the operator does not import: {absent}")
    bundle.run(["python", "-c", "import kopf, urllib3, edgeml.runtime"])
    say("imports edgeml.runtime (kopf, urllib3); no ML libraries, no kubernetes client")


def check_training(bundle: Bundle, workdir: Path, model_uri: str | None) -> None:
    bundle.run(["python", "-c", "import sklearn, skl2onnx, mlflow, edgeml.training.program"])
    say("imports sklearn, skl2onnx, mlflow, edgeml.training.program")
    say("edgeml train --help: " + first_line(bundle.run(["edgeml", "train", "--help"])))
    (workdir / "model.onnx").unlink(missing_ok=True)
    out = bundle.run(["python", "-c", TRAIN_SCRIPT], [Mount(workdir, "/work", writable=True)])
    say(first_line(out) + f" (to {workdir})")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (loopback)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def check_serving(bundle: Bundle, workdir: Path, model_uri: str | None) -> None:
    bundle.run(["python", "-c", (
        "import onnxruntime, numpy, orjson, httptools, uvloop, prometheus_client, "
        "edgeml.serving.app, edgeml.serving.program, edgeml.serving.fetch, sys; "
        "extra = [m for m in ('mlflow', 'pydantic', 'requests', 'kopf') if m in sys.modules]; "
        "assert not extra, extra"
    )])  # fmt: skip
    say("imports onnxruntime, edgeml.serving.app/.program/.fetch; no mlflow, pydantic, kopf")
    say("edgeml serve --help: " + first_line(bundle.run(["edgeml", "serve", "--help"])))
    if model_uri:
        check_fetch(bundle, model_uri)
    model = workdir / "model.onnx"
    if not model.exists():
        say(f"no {model} (hack/images check training writes it): not serving a model")
        return
    port = free_port()
    server = bundle.start(
        ["edgeml", "serve", f"--model-name={MODEL_NAME}", "--model-path=/model/model.onnx",
         "--host=127.0.0.1", f"--port={port}", "--no-window-state", "--cache-dir=/tmp/cache"],
        [Mount(workdir, "/model")],
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _ = http("GET", f"{base}/v2/health/ready")
            except OSError:
                status = 0
            if status == 200:
                break
            if server.poll() is not None or time.monotonic() > deadline:
                output = server.stdout.read() if server.stdout else ""
                raise SystemExit(f"edgeml serve did not become ready (HTTP {status}):\n{output}")
            time.sleep(0.2)
        _, meta = http("GET", f"{base}/v2/models/{MODEL_NAME}")
        tensor = meta["inputs"][0]
        row = [0.5, 1.0, -0.25, 0.0, 0.1, -1.0][:FEATURES]
        status, answer = http("POST", f"{base}/v2/models/{MODEL_NAME}/infer", {
            "inputs": [{"name": tensor["name"], "shape": [1, FEATURES],
                        "datatype": tensor["datatype"], "data": row}],
        })  # fmt: skip
        if status != 200:
            raise SystemExit(f"inference answered HTTP {status}: {answer}")
        outputs = {o["name"]: o["data"] for o in answer["outputs"]}
        say(f"edgeml serve on 127.0.0.1:{port}: ready; one inference -> {outputs}")
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def check_fetch(bundle: Bundle, model_uri: str) -> None:
    """The fetch child against a real MLflow: download, verify, cache."""
    tracking = os.environ.get("MLFLOW_TRACKING_URI")
    if not tracking:
        raise SystemExit("--model-uri needs MLFLOW_TRACKING_URI (the tracking server)")
    started = time.monotonic()
    out = bundle.run(
        ["python", "-m", "edgeml.serving.fetch", f"--model-uri={model_uri}", "--cache-dir=/tmp/c"],
        env=[f"MLFLOW_TRACKING_URI={tracking}"],
    )
    lines = [line for line in out.splitlines() if line.startswith("{")]
    outcome = json.loads(lines[-1]) if lines else {}
    if outcome.get("outcome") != "cached":
        raise SystemExit(f"the fetch of {model_uri} did not cache it: {out}")
    say(f"fetch {model_uri} from {tracking}: {outcome} in {time.monotonic() - started:.1f}s")


CHECKS = {"operator": check_operator, "serving": check_serving, "training": check_training}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hack/images check")
    parser.add_argument("command", choices=["check"])
    parser.add_argument("name", choices=sorted(CHECKS))
    parser.add_argument("--bundle", type=Path, required=True, help="an unpacked OCI bundle")
    parser.add_argument("--arch", default="amd64")
    parser.add_argument("--workdir", type=Path, help="where the training check writes its model")
    parser.add_argument("--model-uri", help="serving: also fetch this models:/ URI from MLflow")
    args = parser.parse_args(argv)
    if shutil.which("runc") is None:
        raise SystemExit("runc is not installed")
    home = Path(os.environ.get("EDGEML_HOME", Path.home() / ".cache" / "edgeml"))
    workdir: Path = args.workdir or home / "images" / "check" / "model"
    workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o777)  # noqa: S103 (the container's uid 65532 writes the model here)
    say(f"checking edgeml-{args.name} ({args.arch}) under runc")
    host = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, "")
    bundle = Bundle(args.bundle, emulated=args.arch != host)
    check_common(bundle)
    CHECKS[args.name](bundle, workdir, args.model_uri)
    say(f"edgeml-{args.name} ({args.arch}): ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

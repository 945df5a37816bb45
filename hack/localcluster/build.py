"""Build the cluster's binaries from pinned Go modules, once, into a cache outside the repo.

Each Go module under hack/build/ pins one upstream project. A build lands in
`<cache>/bin/<name>-<version>-<digest of go.mod and go.sum>/`; it is written to a
`.partial` directory first and renamed when complete, so an interrupted build is
never mistaken for a finished one and a changed pin builds anew.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from localcluster.settings import (
    BUILD_DIR,
    ETCD_VERSION,
    HELM_VERSION,
    KUBERNETES_VERSION,
    KWOK_VERSION,
    VERSITYGW_VERSION,
    Settings,
)

# KWOK ships its stock behaviours as Stage objects; these make nodes Ready with
# leases and pods Running, completed and deleted like a fast kubelet would.
KWOK_STAGE_FILES = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
)


class BuildError(RuntimeError):
    """A build that cannot proceed; the message says what to do."""


@dataclass(frozen=True)
class Target:
    """One binary to build: its name and the Go package that is its main."""

    name: str
    package: str


@dataclass(frozen=True)
class GoModule:
    """A pinned Go module under hack/build/ and the binaries built from it."""

    name: str
    version: str
    targets: tuple[Target, ...]
    ldflags: tuple[str, ...] = ()

    @property
    def source(self) -> Path:
        return BUILD_DIR / self.name

    def digest(self) -> str:
        """A short digest of the pins, so changing go.mod or go.sum means a new build."""
        sha = hashlib.sha256()
        for fname in ("go.mod", "go.sum"):
            sha.update((self.source / fname).read_bytes())
        sha.update(" ".join(self.ldflags).encode())
        return sha.hexdigest()[:12]

    def output_dir(self, settings: Settings) -> Path:
        return settings.bin_dir / f"{self.name}-{self.version}-{self.digest()}"


def _kubernetes_ldflags(version: str) -> tuple[str, ...]:
    # Without these, the components report v0.0.0 and kubectl warns about skew.
    major, minor = version.lstrip("v").split(".")[:2]
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return tuple(flags)


MODULES = (
    GoModule(
        "kubernetes",
        KUBERNETES_VERSION,
        tuple(
            Target(name, f"k8s.io/kubernetes/cmd/{name}")
            for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
        ),
        _kubernetes_ldflags(KUBERNETES_VERSION),
    ),
    GoModule("kwok", KWOK_VERSION, (Target("kwok", "sigs.k8s.io/kwok/cmd/kwok"),)),
    GoModule("etcd", ETCD_VERSION, (Target("etcd", "go.etcd.io/etcd/server/v3"),)),
    GoModule("helm", HELM_VERSION, (Target("helm", "helm.sh/helm/v3/cmd/helm"),)),
    GoModule(
        "versitygw",
        VERSITYGW_VERSION,
        (Target("versitygw", "github.com/versity/versitygw/cmd/versitygw"),),
    ),
)

REAL_NODE_MODULES = (
    # Its own module (same pin, same replace block) so the kubelet, needed only by the
    # real-kubelet tier, does not rebuild the control plane when it is added.
    GoModule(
        "kubelet",
        KUBERNETES_VERSION,
        (Target("kubelet", "k8s.io/kubernetes/cmd/kubelet"),),
        _kubernetes_ldflags(KUBERNETES_VERSION),
    ),
)


def binary(settings: Settings, name: str) -> Path:
    """The path of a built binary (which may not exist yet: see `ensure_built`)."""
    for module in (*MODULES, *REAL_NODE_MODULES):
        for target in module.targets:
            if target.name == name:
                return module.output_dir(settings) / name
    raise KeyError(name)


def kwok_stages(settings: Settings) -> Path:
    """The KWOK stage configuration written next to the kwok binary."""
    return binary(settings, "kwok").parent / "stages.yaml"


def find_go() -> str:
    """The Go toolchain on PATH, or a BuildError that says how to get one."""
    go = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if go is None:
        raise BuildError(
            "Go is not installed: the local cluster builds kube-apiserver, KWOK and etcd from "
            "their Go modules. Install Go 1.25 or newer (https://go.dev/dl/, or Debian's "
            "golang-go from bookworm-backports) and put `go` on PATH, then run this again."
        )
    return go


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    # Never fetch a different toolchain behind the user's back; the pins say go 1.25/1.26.
    env.setdefault("GOTOOLCHAIN", "local")
    env["CGO_ENABLED"] = "0"
    return env


def _run_build(go: str, module: GoModule, target: Target, out: Path) -> None:
    """Run one `go build`, printing a progress line every 15 s (a cold build takes minutes)."""
    cmd = [go, "build", "-v", "-trimpath", "-o", str(out / target.name)]
    cmd += ["-ldflags", " ".join(("-s", "-w", *module.ldflags)), target.package]
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=module.source,
        env=_go_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    packages = 0
    tail: list[str] = []
    done = threading.Event()

    def report() -> None:
        while not done.wait(15):
            elapsed = time.monotonic() - started
            print(f"    {target.name}: {packages} packages compiled, {elapsed:.0f}s", flush=True)

    reporter = threading.Thread(target=report, daemon=True)
    reporter.start()
    for line in proc.stderr:
        packages += 1
        tail = [*tail[-30:], line.rstrip()]
    code = proc.wait()
    done.set()
    if code != 0:
        raise BuildError(
            f"`go build {target.package}` failed (exit {code}) in {module.source}:\n"
            + "\n".join(tail[-20:])
            + "\nIf the module cache is damaged, `go clean -modcache` and run again; "
            "a network failure means the Go module proxy was not reachable."
        )
    elapsed = time.monotonic() - started
    print(f"  built {target.name} in {elapsed:.0f}s", flush=True)


def _write_kwok_stages(go: str, module: GoModule, out: Path) -> None:
    listing = subprocess.run(
        [go, "list", "-m", "-json", "sigs.k8s.io/kwok"],
        cwd=module.source,
        env=_go_env(),
        check=True,
        capture_output=True,
        text=True,
    )
    kwok_src = Path(json.loads(listing.stdout)["Dir"])
    docs = [(kwok_src / rel).read_text() for rel in KWOK_STAGE_FILES]
    (out / "stages.yaml").write_text("\n---\n".join(doc.strip() for doc in docs) + "\n")


def ensure_built(settings: Settings, real_nodes: bool = False) -> None:
    """Build every pinned binary that is not in the cache yet (the kubelet too with
    `real_nodes`); quick when all are."""
    settings.bin_dir.mkdir(parents=True, exist_ok=True)
    wanted = (*MODULES, *REAL_NODE_MODULES) if real_nodes else MODULES
    missing = [m for m in wanted if not (m.output_dir(settings) / ".complete").exists()]
    if not missing:
        return
    go = find_go()
    for module in missing:
        final = module.output_dir(settings)
        partial = final.with_name(final.name + ".partial")
        # A half-finished earlier build is discarded whole, never resumed.
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        print(
            f"building {module.name} {module.version} into {final} "
            "(first use only; a cold build takes several minutes)",
            flush=True,
        )
        for target in module.targets:
            _run_build(go, module, target, partial)
        if module.name == "kwok":
            _write_kwok_stages(go, module, partial)
        (partial / ".complete").write_text(f"{module.version}\n")
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)


def main() -> int:
    """`python -m localcluster.build`: build what is missing."""
    try:
        ensure_built(Settings())
    except BuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

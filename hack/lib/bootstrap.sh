# Shared set-up for hack/ entry points: Debian packages, Go check, the Python venv.
# Sourced, not run. Idempotent and quick when everything is already there.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$REPO_ROOT/.venv"
export PATH="/usr/local/go/bin:$PATH"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 2; }

ensure_debian_packages() {
  # iproute2 makes the process nodes' network namespaces; prometheus is the server the
  # tests of the Prometheus metrics source query; the rest are for a bare image.
  local missing=()
  command -v ip >/dev/null || missing+=(iproute2)
  command -v prometheus >/dev/null || missing+=(prometheus)
  command -v mount >/dev/null || missing+=(mount)
  command -v git >/dev/null || missing+=(git)
  python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing Debian packages ${missing[*]}: run as root or install them"
  say "installing Debian packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_go() {
  command -v go >/dev/null || die "Go is not installed. The local cluster builds kube-apiserver, \
KWOK and etcd from their Go modules: install Go 1.25+ (https://go.dev/dl/) and put it on PATH."
}

ensure_venv() {
  local stamp="$VENV/.edgeml-stamp" want
  want="$(sha256sum "$REPO_ROOT/pyproject.toml" | cut -c1-16)"
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  say "setting up the Python environment in $VENV (first use takes about a minute)"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e "$REPO_ROOT[dev]"
  echo "$want" >"$stamp"
}

bootstrap() {
  ensure_debian_packages
  ensure_go
  ensure_venv
  export PYTHONPATH="$REPO_ROOT/hack${PYTHONPATH:+:$PYTHONPATH}"
}

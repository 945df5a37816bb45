# The demo's edge clients, started so that nothing outlives the demo. Sourced, not run.
#
#   start_traffic NAMESPACE DEPLOYMENT MODEL   # sets $traffic to the client's PID
#   stop_traffic
#
# The client is started as a plain command, not through a shell function put in the
# background: that would be a subshell, `$!` its PID, and killing it left Python running
# (found sending requests 38 minutes after a demo). The client also ends by itself when
# the shell that started it goes away (hack/demo_canary.py watches its parent), and it
# carries the local cluster's marker, so `hack/cluster down` finds and stops it as well.
start_traffic() {
  local marker
  marker="$("$VENV/bin/python" -c 'from localcluster.settings import MARKER_ENV, Settings; print(f"{MARKER_ENV}={Settings().cluster_dir}")')"
  env "$marker" PYTHONPATH="$REPO_ROOT/hack:$REPO_ROOT/operator:$REPO_ROOT/tests" \
    "$VENV/bin/python" "$REPO_ROOT/hack/demo_canary.py" traffic "$@" &
  traffic=$!
}

stop_traffic() {
  [ -n "${traffic:-}" ] || return 0
  kill "$traffic" 2>/dev/null || true
  wait "$traffic" 2>/dev/null || true
  traffic=""
}

# The demo's props (edge clients, a webhook receiver), started so that nothing outlives
# the demo. Sourced, not run.
#
#   start_traffic NAMESPACE DEPLOYMENT MODEL   # the canary's clients; sets $traffic
#   start_prop SCRIPT ARGS...                  # any hack/ prop; sets $prop, adds to $props
#   stop_traffic; stop_props
#
# Each prop is started as a plain command, not through a shell function put in the
# background: that would be a subshell, `$!` its PID, and killing it left Python running
# (found sending requests 38 minutes after a demo). Props also end by themselves when the
# shell that started them goes away (they watch their parent), and they carry the local
# cluster's marker, so `hack/cluster down` finds and stops them as well.
props=""

start_prop() {
  local marker script="$1"
  shift
  marker="$(PYTHONPATH="$REPO_ROOT/hack" "$VENV/bin/python" -c 'from localcluster.settings import MARKER_ENV, Settings; print(f"{MARKER_ENV}={Settings().cluster_dir}")')"
  # EDGEML_PROP_PARENT: the shell whose end ends the prop, fixed before the prop starts
  # (asked later, a shell killed while Python is still importing would go unnoticed).
  env "$marker" EDGEML_PROP_PARENT=$$ PYTHONPATH="$REPO_ROOT/hack:$REPO_ROOT/operator:$REPO_ROOT/tests" \
    "$VENV/bin/python" "$REPO_ROOT/hack/$script" "$@" &
  prop=$!
  props="$props $prop"
}

stop_props() {
  local pid
  for pid in $props; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  props=""
}

start_traffic() {
  start_prop demo_canary.py traffic "$@"
  traffic=$prop
}

stop_traffic() {
  [ -n "${traffic:-}" ] || return 0
  kill "$traffic" 2>/dev/null || true
  wait "$traffic" 2>/dev/null || true
  traffic=""
}

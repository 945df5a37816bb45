#!/usr/bin/env bash
# Create the peers' environments for bench/serving.py, outside the repository.
#
#   bench/serving_peers.sh            # idempotent; prints the venv's directory
#
# MLServer 1.7.1 + mlserver-mlflow 1.7.1 get their own venv (their pins clash with the
# project's), built from the same base interpreter as .venv and with the same
# scikit-learn as .venv so the pickled model loads unchanged. MLServer 1.7 needs
# uvloop<0.22. onnxruntime (the same as .venv's) is for MLServer's fastest path, the
# custom runtime in bench/mlserver_onnx.py. `mlflow models serve` runs from .venv
# itself (--env-manager local).
# Override the location with EDGEML_BENCH_VENVS (default ~/.cache/edgeml/bench-venvs).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
main_python="$repo/.venv/bin/python"
base_python="$("$main_python" -c 'import sys; print(sys._base_executable)')"
sklearn_version="$("$main_python" -c 'import sklearn; print(sklearn.__version__)')"
ort_version="$("$main_python" -c 'import onnxruntime; print(onnxruntime.__version__)')"
root="${EDGEML_BENCH_VENVS:-$HOME/.cache/edgeml/bench-venvs}"
venv="$root/mlserver-1.7.1"
stamp="$venv/.complete-sklearn-$sklearn_version-onnxruntime-$ort_version"

if [[ ! -f "$stamp" ]]; then
    mkdir -p "$root"
    rm -rf "$venv"
    "$base_python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "mlserver==1.7.1" "mlserver-mlflow==1.7.1" "uvloop<0.22" \
        "scikit-learn==$sklearn_version" "onnxruntime==$ort_version" >&2
    "$venv/bin/mlserver" --version >&2
    touch "$stamp"
fi
echo "$venv"

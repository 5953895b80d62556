#!/usr/bin/env bash
# Idempotent set-up of the project's virtualenv (.venv) with the package and its
# test dependencies.  Used by scripts/demo.sh, scripts/test.sh and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.leafmap_tiles_installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  touch "$stamp"
fi
# The package's jupyter-server extension (the proxy path the browser uses in JupyterLab,
# Notebook 7, JupyterHub, Binder) is enabled by etc/jupyter/jupyter_server_config.d/
# leafmap_tiles.json, which `pip install -e .` installs itself (_build_backend adds it to
# the editable wheel); nothing to copy by hand.

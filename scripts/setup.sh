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
# The package's jupyter-server extension (the proxy path for JupyterHub/Binder) is enabled
# by etc/jupyter/jupyter_server_config.d/leafmap_tiles.json, installed as data-files by a
# wheel install.  An editable install never installs data-files (setuptools' PEP 660
# editable wheels carry only the import hook), so put the same file where a wheel would.
conf_d=.venv/etc/jupyter/jupyter_server_config.d
if ! cmp -s jupyter-config/jupyter_server_config.d/leafmap_tiles.json "$conf_d/leafmap_tiles.json"; then
  mkdir -p "$conf_d"
  cp jupyter-config/jupyter_server_config.d/leafmap_tiles.json "$conf_d/leafmap_tiles.json"
fi

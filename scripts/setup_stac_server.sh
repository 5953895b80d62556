#!/usr/bin/env bash
# Creates .venv-stac/ (repo root) with stac-fastapi-static, the real STAC API server
# that the provider tests start on 127.0.0.1. It gets its own virtualenv because it
# needs starlette<0.50 and fastapi<0.120, which the package's own environment may not
# satisfy. Idempotent: does nothing when the venv already imports the server.
# Override the location with LEAFMAP_TILES_STAC_VENV (the tests read it too).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LEAFMAP_TILES_STAC_VENV:-$REPO/.venv-stac}"
PYTHON="${PYTHON:-python3}"
PKGS=("stac-fastapi-static==1.0.1" "starlette<0.50" "fastapi<0.120" "uvicorn>=0.29")

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import stac_fastapi.static.api, uvicorn" 2>/dev/null; then
    echo "STAC server venv ready: $VENV"
    exit 0
fi

"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "${PKGS[@]}"
"$VENV/bin/python" -c "import stac_fastapi.static.api, uvicorn"
echo "STAC server venv created: $VENV"

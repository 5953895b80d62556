#!/usr/bin/env bash
# Creates .venv-stac/ (repo root) with stac-fastapi-static, the real STAC API server
# (CQL2 filter, paging) that the provider tests start on 127.0.0.1, and prints its
# location as a KEY=VALUE line (scripts/test.sh exports such lines):
#     LEAFMAP_TILES_STAC_VENV=/path/to/repo/.venv-stac
# It has its own virtualenv because it needs starlette<0.50 and fastapi<0.120, which
# the package's environment need not satisfy. Idempotent: nothing is installed when
# the venv already imports the server. LEAFMAP_TILES_STAC_VENV chooses another place.
set -euo pipefail

log() { echo "setup_stac_server: $*" >&2; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LEAFMAP_TILES_STAC_VENV:-$REPO/.venv-stac}"
PYTHON="${PYTHON:-python3}"
PKGS=("stac-fastapi-static==1.0.1" "starlette<0.50" "fastapi<0.120" "uvicorn>=0.29")

ready() { [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import stac_fastapi.static.api, uvicorn" 2>/dev/null; }

if ready; then
    log "ready: $VENV"
else
    log "creating $VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip >&2
    "$VENV/bin/python" -m pip install -q "${PKGS[@]}" >&2
    ready || { log "stac-fastapi-static does not import in $VENV"; exit 1; }
    log "created: $VENV"
fi
echo "LEAFMAP_TILES_STAC_VENV=$VENV"

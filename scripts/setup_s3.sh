#!/usr/bin/env bash
# Creates .venv-s3/ (repo root) with moto's standalone S3-compatible server
# (`moto[server]` from PyPI: real HTTP, real SigV4 signature checks once IAM
# authentication is switched on) that the object-storage tests start on 127.0.0.1,
# and prints its location as a KEY=VALUE line (scripts/test.sh exports such lines):
#     LEAFMAP_TILES_S3_VENV=/path/to/repo/.venv-s3
# It has its own virtualenv because moto pins Flask/Werkzeug versions the package's
# environment need not satisfy.  The tests run `$LEAFMAP_TILES_S3_VENV/bin/python -m
# tests.s3.s3server` (tests/s3/s3server.py), which starts moto on a free port and
# creates a user and its key through moto's own IAM API.  Idempotent: nothing is
# installed when the venv already imports moto's server.  LEAFMAP_TILES_S3_VENV
# chooses another place.
set -euo pipefail

log() { echo "setup_s3: $*" >&2; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LEAFMAP_TILES_S3_VENV:-$REPO/.venv-s3}"
PYTHON="${PYTHON:-python3}"
PKGS=("moto[server]==5.2.5")

ready() { [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import moto.server, boto3" 2>/dev/null; }

if ready; then
    log "ready: $VENV"
else
    log "creating $VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip >&2
    "$VENV/bin/python" -m pip install -q "${PKGS[@]}" >&2
    ready || { log "moto's server does not import in $VENV"; exit 1; }
    log "created: $VENV"
fi
echo "LEAFMAP_TILES_S3_VENV=$VENV"

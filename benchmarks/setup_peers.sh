#!/usr/bin/env bash
# Create the virtualenv that holds the peer tile servers (titiler, terracotta,
# localtileserver, leafmap) and the tools the benchmarks use (rio-cogeo), separate
# from the project's own .venv.  Usage: benchmarks/setup_peers.sh [VENV_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-${LEAFMAP_TILES_PEERS_VENV:-$here/.venv-peers}}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/pip" install --upgrade pip >/dev/null
"$venv/bin/pip" install -r "$here/requirements-peers.txt"
"$venv/bin/python" - <<'PY'
import importlib.metadata as m
for name in ("titiler.core", "titiler.application", "terracotta", "localtileserver", "leafmap", "rio-tiler", "rasterio", "rio-cogeo"):
    try:
        print(f"{name:22s} {m.version(name)}")
    except m.PackageNotFoundError:
        print(f"{name:22s} MISSING")
PY
echo "peers venv: $venv"

#!/usr/bin/env bash
# Main job on the bundled real data, no network: executes notebooks/01_add_raster.ipynb
# headless and reports the tiles it rendered (PNG files under demo_output/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python scripts/run_notebook.py notebooks/01_add_raster.ipynb --out demo_output

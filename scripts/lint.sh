#!/usr/bin/env bash
# The static checks that .ci/run runs before the tests: ruff (pyflakes rules) on the
# whole repository and mypy (strict on the modules listed in pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m ruff check .
.venv/bin/python -m mypy

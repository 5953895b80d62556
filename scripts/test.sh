#!/usr/bin/env bash
# Sets everything up (virtualenv, and the system services the tests use when this
# machine can install them) and runs the test suite.  Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
for extra in scripts/setup_*.sh; do
  [ "$extra" = scripts/setup.sh ] && continue
  [ -f "$extra" ] || continue
  if [ -f "$extra.env" ]; then rm -f "$extra.env"; fi
  # each setup_* script prints KEY=VALUE lines for the tests on stdout
  bash "$extra" > "$extra.env" || { echo "warning: $extra failed; the tests that need it will be skipped" >&2; : > "$extra.env"; }
  while IFS= read -r line; do
    if [[ "$line" =~ ^[A-Z_][A-Z0-9_]*= ]]; then export "$line"; fi
  done < "$extra.env"
  rm -f "$extra.env"
done
exec .venv/bin/python -m pytest -q -rs "$@"

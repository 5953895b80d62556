"""Fixtures of the collection tests: the provider tests' real servers (re-exported
from tests/providers/conftest.py), our own STAC API instance (the tests stop it), and
the delaying HTTP server of benchmarks/collections_headers.py for failing headers."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROVIDERS = HERE.parent / "providers"
REPO = HERE.parents[1]
if str(PROVIDERS) not in sys.path:
    sys.path.insert(0, str(PROVIDERS))


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


providers_fixtures = _load("_collections_providers_conftest", PROVIDERS / "conftest.py")
headers_bench = _load("_collections_headers_bench", REPO / "benchmarks" / "collections_headers.py")

# the fixtures the collection tests reuse
ndvi_assets = providers_fixtures.ndvi_assets
asset_server = providers_fixtures.asset_server
recording_server = providers_fixtures.recording_server

"""Shared fixtures: paths to the real rasters bundled in tests/data, a map per test."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


def data(name: str) -> str:
    return str(DATA / name)


@pytest.fixture
def m():
    from leafmap_tiles import Map

    mp = Map(basemap=None)
    yield mp
    mp.close()

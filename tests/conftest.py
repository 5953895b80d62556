"""Shared fixtures and helpers: paths to the real rasters bundled in tests/data, a map
per test, a free port, the PostgreSQL server of the tests."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
#: the PostgreSQL server scripts/setup_postgres.sh starts (LEAFMAP_TILES_TEST_PG overrides)
DEFAULT_PG_URL = "postgresql://leafmap:leafmap@127.0.0.1:55432/leafmap_tiles_test"


def data(name: str) -> str:
    return str(DATA / name)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free now (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_pg_url() -> tuple[str | None, str]:
    """``(url, "")`` of the tests' PostgreSQL server when it answers, else ``(None,
    why)`` (the reason a test that needs it is skipped)."""
    url = os.environ.get("LEAFMAP_TILES_TEST_PG") or DEFAULT_PG_URL
    try:
        import sqlalchemy as sqla

        engine = sqla.create_engine(url.replace("postgresql://", "postgresql+psycopg2://"),
                                    connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sqla.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means: no server
        return None, (f"no PostgreSQL server at {url.split('@')[-1]} ({type(exc).__name__}); "
                      "run `bash scripts/setup_postgres.sh` and export LEAFMAP_TILES_TEST_PG")
    return url, ""


@pytest.fixture
def m():
    from leafmap_tiles import Map

    mp = Map(basemap=None)
    yield mp
    mp.close()

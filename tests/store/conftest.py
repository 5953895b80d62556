"""Fixtures for the key-store tests: real rasters, fresh SQLite and PostgreSQL stores.

PostgreSQL: the URL comes from $LEAFMAP_TILES_TEST_PG, else the server that
``scripts/setup_postgres.sh`` starts is tried; without one, those tests are skipped
with the reason shown by ``pytest -rs``.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from tests.conftest import find_pg_url

DATA = Path(__file__).resolve().parents[1] / "data"


_PG_URL, _PG_SKIP_REASON = find_pg_url()


@pytest.fixture(scope="session")
def pg_url() -> str:
    if _PG_URL is None:
        pytest.skip(_PG_SKIP_REASON)
    return _PG_URL


def _admin_engine(url: str):
    import sqlalchemy as sqla

    base = url.rsplit("/", 1)[0] + "/postgres"
    return sqla.create_engine(base.replace("postgresql://", "postgresql+psycopg2://"),
                              isolation_level="AUTOCOMMIT")


@pytest.fixture
def pg_store_url(pg_url):
    """URL of a PostgreSQL database that does not exist yet; dropped afterwards."""
    import sqlalchemy as sqla

    name = f"lt_{uuid.uuid4().hex[:12]}"
    url = pg_url.rsplit("/", 1)[0] + "/" + name
    yield url
    engine = _admin_engine(pg_url)
    with engine.connect() as conn:
        conn.execute(sqla.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A fresh database location for each back end (SQLite file, PostgreSQL database)."""
    if request.param == "sqlite":
        return str(tmp_path / "store.sqlite")
    return request.getfixturevalue("pg_store_url")


@pytest.fixture
def data() -> Path:
    return DATA


@pytest.fixture
def year_dir(tmp_path) -> Path:
    """A folder with the two real Landsat composites named by year."""
    d = tmp_path / "years"
    d.mkdir()
    for year in ("1985", "1990"):
        shutil.copy(DATA / "landsat_annual" / f"{year}.tif", d / f"{year}.tif")
    return d

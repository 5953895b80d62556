"""Fixtures: one Terracotta database (written by the real ``terracotta`` package) on
real rasters, served in-process both by Terracotta's own Flask app and by ours.

Keys are ``(group, item, band)``.  The Landsat composites in tests/data have four
bands; Terracotta serves band 1 of a file, so each band is written to its own
single-band GeoTIFF (pixels, georeferencing and nodata unchanged) to get datasets
that ``/rgb`` and ``/compute`` can combine.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[1] / "data"

SINGLE = {
    ("cog", "greenland", "b1"): "cog.tif",  # uint16, no nodata tag
    ("cog", "greenland16", "b1"): "cog_int16.tif",  # int16, nodata -32768
    ("s1", "vv", "b1"): "cog_nodata_nan.tif",  # float32 with NaN
    ("dem", "rmnp", "b1"): "rmnp-dem.tif",  # uint16 nodata 65535, EPSG:4326
    ("dem", "colorado", "b1"): "co_elevation_window.tif",  # float32, nodata -3.4e38, EPSG:4269
    ("landcover", "nlcd", "b1"): "nlcd.tif",  # categorical, nodata 255
}
YEARS = ("1985", "1990")
BANDS = ("b1", "b2", "b3", "b4")


def split_bands(src_path: Path, out_dir: Path) -> dict[str, str]:
    import rasterio

    out = {}
    with rasterio.open(src_path) as src:
        profile = src.profile.copy()
        profile.update(count=1, photometric=None)
        profile.pop("photometric", None)
        for i, band in enumerate(BANDS, start=1):
            dst = out_dir / f"{src_path.stem}_{band}.tif"
            with rasterio.open(dst, "w", **profile) as d:
                d.write(src.read(i), 1)
            out[band] = str(dst)
    return out


@pytest.fixture(scope="session")
def tc_db(tmp_path_factory) -> str:
    """Path of a Terracotta database made by ``terracotta`` itself."""
    import terracotta

    root = tmp_path_factory.mktemp("tcapi")
    db = str(root / "terracotta.sqlite")
    driver = terracotta.get_driver(db, provider="sqlite")
    driver.create(["group", "item", "band"], key_descriptions={"group": "kind of data", "band": "band name"})
    with driver.connect():
        for keys, name in SINGLE.items():
            driver.insert(keys, str(DATA / name))
        for year in YEARS:
            for band, path in split_bands(DATA / "landsat_annual" / f"{year}.tif", root).items():
                driver.insert(("landsat", year, band), path)
    return db


@pytest.fixture(scope="session")
def tc_client(tc_db):
    """Terracotta's own Flask app on ``tc_db`` (Flask test client)."""
    import terracotta
    from terracotta.server import create_app

    # no process pool: forking a pytest process that holds other threads (browser tests,
    # tile servers) can deadlock in the child
    terracotta.update_settings(DRIVER_PATH=tc_db, DRIVER_PROVIDER="sqlite", USE_MULTIPROCESSING=False)
    app = create_app()
    return app.test_client()


@pytest.fixture(scope="session")
def our_app(tc_db):
    from leafmap_tiles.server.terracotta_api import create_terracotta_app

    return create_terracotta_app(tc_db)


@pytest.fixture(scope="session")
def client(our_app):
    from starlette.testclient import TestClient

    with TestClient(our_app, raise_server_exceptions=False) as c:
        yield c


def rgba(png: bytes) -> np.ndarray:
    """Decode a PNG (any colour type, tRNS applied) to (H, W, 4) uint8."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def edge_band(opaque: np.ndarray, width: int = 2) -> np.ndarray:
    """Pixels within ``width`` pixels of the boundary between opaque and transparent."""
    def shift_any(a):
        out = a.copy()
        out[1:] |= a[:-1]
        out[:-1] |= a[1:]
        out[:, 1:] |= a[:, :-1]
        out[:, :-1] |= a[:, 1:]
        return out

    grown, shrunk = opaque.copy(), ~opaque
    for _ in range(width):
        grown = shift_any(grown)
        shrunk = shift_any(shrunk)
    return grown & shrunk


def compare(ours: bytes, theirs: bytes) -> dict:
    """Mean absolute difference (RGB, where both are opaque), and pixels whose
    transparency differs outside / inside the footprint's edge band."""
    a, b = rgba(ours), rgba(theirs)
    assert a.shape == b.shape, (a.shape, b.shape)
    oa, ob = a[..., 3] > 0, b[..., 3] > 0
    both = oa & ob
    diff = np.abs(a[..., :3].astype(int) - b[..., :3].astype(int))[both]
    edge = edge_band(ob)
    mismatch = oa != ob
    return {
        "mean": float(diff.mean()) if diff.size else 0.0,
        "opaque": int(ob.sum()),
        "mismatch_outside_edge": int((mismatch & ~edge).sum()),
        "mismatch_edge": int((mismatch & edge).sum()),
    }

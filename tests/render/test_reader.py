"""render/reader.py: warps that skip PROJ's operation search give rio-tiler's pixels.

NAD83 rasters (NAIP's EPSG:26914, the EPSG:4269 elevation window) are warped to web
mercator with a CRS that names the null datum shift PROJ picks for them anyway; the
tiles must be byte-identical to those made without the shortcut, and rio-tiler's own
``Reader.tile`` pixels must be unchanged.
"""

from __future__ import annotations

import morecantile
import numpy as np
import pytest
import rasterio
from rio_tiler.io import Reader as RioTilerReader

import leafmap_tiles.render.reader as reader_mod
from leafmap_tiles.render import RenderEngine, parse_style
from leafmap_tiles.render.reader import Reader, equivalent_crs
from tests.conftest import data

TMS = morecantile.tms.get("WebMercatorQuad")
NAIP = "naip/m_4709963_se_14_1_20200831.tif"
ELEVATION = "co_elevation_window.tif"


def _equivalent(name):
    with rasterio.open(data(name)) as ds:
        return ds.crs, equivalent_crs(ds.crs, tuple(ds.bounds))


def test_nad83_rasters_have_an_equivalent_crs_and_wgs84_ones_none():
    crs, eq = _equivalent(ELEVATION)
    assert crs.to_epsg() == 4269 and eq.to_epsg() == 4326
    crs, eq = _equivalent(NAIP)
    assert crs.to_epsg() == 26914
    p4 = eq.to_proj4()
    assert "+proj=utm" in p4 and "+zone=14" in p4 and "+ellps=GRS80" in p4 and "+towgs84=0,0,0,0,0,0,0" in p4
    assert _equivalent("cog_dateline.tif")[1] is None  # WGS 84 / UTM 60N: no search to skip
    assert equivalent_crs(rasterio.crs.CRS.from_epsg(3857), (0, 0, 1, 1)) is None
    assert equivalent_crs(rasterio.crs.CRS.from_epsg(4326), (0, 0, 1, 1)) is None


def _tiles(name, zooms, shortcut: bool, monkeypatch):
    """The engine's PNG tiles at the centre and near a corner of ``name``, for ``zooms``."""
    reader_mod._equivalent.clear()
    with monkeypatch.context() as mp:
        if not shortcut:
            mp.setattr(reader_mod, "_candidates", lambda crs: [])
        path = data(name)
        eng = RenderEngine()
        info = eng.info(path, None)
        style = parse_style({}, info, {})
        w, s, e, n = info.bounds
        out = {}
        for z in zooms:
            for lon, lat in (((w + e) / 2, (s + n) / 2), (w + (e - w) * 0.1, s + (n - s) * 0.9)):
                t = TMS.tile(lon, lat, z)
                out[(z, t.x, t.y)] = eng.tile(path, style, z, t.x, t.y)
    reader_mod._equivalent.clear()
    return out


@pytest.mark.parametrize("name, zooms", [(ELEVATION, range(16, 5, -1)), (NAIP, range(17, 6, -1))])
def test_engine_tiles_are_byte_identical_with_the_shortcut(name, zooms, monkeypatch):
    fast = _tiles(name, zooms, True, monkeypatch)
    plain = _tiles(name, zooms, False, monkeypatch)
    assert len(fast) >= len(list(zooms))
    assert {k for k in fast if fast[k] != plain[k]} == set()


@pytest.mark.parametrize("name", [ELEVATION, NAIP])
def test_reader_tile_equals_rio_tiler_and_warps_with_the_equivalent_crs(name, monkeypatch):
    seen = []
    real_part = RioTilerReader.part

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("vrt_options"))
        return real_part(self, *args, **kwargs)

    path = data(name)
    with RioTilerReader(path) as ref:
        w, s, e, n = ref.get_geographic_bounds(rasterio.crs.CRS.from_epsg(4326))
        tiles = [TMS.tile((w + e) / 2, (s + n) / 2, z) for z in range(15, 9, -1)]
        expected = [ref.tile(t.x, t.y, t.z) for t in tiles]
    monkeypatch.setattr(RioTilerReader, "part", spy)
    with Reader(path) as ours:
        got = [ours.tile(t.x, t.y, t.z) for t in tiles]
        eq = equivalent_crs(ours.crs, tuple(ours.dataset.bounds))
    for a, b in zip(expected, got):
        assert np.array_equal(a.array.data, b.array.data, equal_nan=True)
        assert np.array_equal(np.ma.getmaskarray(a.array), np.ma.getmaskarray(b.array))
    assert seen and all(v is not None and v["src_crs"] == eq for v in seen)

"""Decimated levels of rasters without overviews (leafmap_tiles/render/decimated.py):
coarser levels reduced in memory from the base level, and the base level built in the
background while the raster is viewed near its native zoom.

Reference values: the NAIP test scene (256 x 256, 4 bands, nodata 0, no overviews).
Checked by hand when this was written: GDAL's own 1/8 average read of the file equals
numpy's mean of each 8 x 8 block (rounded half up) exactly; the level reduced from the
1/4 level is within 1 DN of it (the 1/4 level is rounded once before the second mean).
"""

from __future__ import annotations

import threading
import warnings

import morecantile
import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling

from leafmap_tiles.render import decimated
from tests.conftest import data

NAIP = "naip/m_4709963_se_14_1_20200831.tif"
TMS = morecantile.tms.get("WebMercatorQuad")


def _open(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return rasterio.open(data(name))


def test_reduced_average_level_is_the_block_mean_of_the_raster():
    ds = _open(NAIP)
    full = ds.read().astype("float64")
    valid = full != 0
    blocks = np.where(valid, full, 0).reshape(4, 32, 8, 32, 8).sum(axis=(2, 4))
    counts = valid.reshape(4, 32, 8, 32, 8).sum(axis=(2, 4))
    assert counts.min() > 0  # every block has data: the mean is defined everywhere
    expected = np.floor(blocks / counts + 0.5)
    base = decimated._build_level(ds, 4, Resampling.average, 0, None)
    data8, alpha8, (sx, sy) = decimated._reduce_level(base, 2, "average", 0)
    assert data8.shape == (4, 32, 32) and data8.dtype == np.uint8 and alpha8 is None
    assert (sx, sy) == (8.0, 8.0)
    assert np.abs(data8 - expected).max() <= 1
    gdal8 = decimated._build_level(ds, 8, Resampling.average, 0, None)[0]
    assert (gdal8 == expected).all()  # GDAL's own 1/8 read, the reference's reference
    assert np.abs(data8.astype(int) - gdal8.astype(int)).max() <= 1


def test_reduced_level_skips_nodata_and_nan_and_marks_empty_blocks():
    # a float level with NaN and nodata (-3000) holes, reduced by 2
    base = np.array([[[1.0, 3.0, -3000.0, -3000.0],
                      [np.nan, 5.0, -3000.0, np.nan]]], dtype="float32")
    out, _, (sx, sy) = decimated._reduce_level((base, None, (4.0, 4.0)), 2, "average", -3000.0)
    assert out.shape == (1, 1, 2) and (sx, sy) == (8.0, 8.0)
    assert out[0, 0, 0] == pytest.approx(3.0)  # mean of 1, 3, 5 (NaN skipped, as GDAL does)
    assert out[0, 0, 1] == -3000.0  # no valid pixel: nodata
    # an alpha-masked level: validity sampled at the block centre, mean of valid pixels
    data = np.array([[[10, 20, 30], [40, 50, 60], [70, 80, 90]]], dtype="uint8")
    alpha = np.array([[255, 0, 255], [255, 255, 0], [0, 0, 0]], dtype="uint8")
    out, a, _ = decimated._reduce_level((data, alpha, (1.0, 1.0)), 2, "average", None)
    assert out.shape == (1, 2, 2)
    assert out[0, 0, 0] == 33  # (10 + 40 + 50) / 3 = 33.3, rounded
    assert a.tolist() == [[255, 0], [0, 0]]  # centres: (1, 1) -> 255, (1, 2) -> 0, (2, ...) -> 0


@pytest.fixture
def large(monkeypatch):
    """Treat the small test rasters as large ones (the thresholds are module constants):
    too large for rio-tiler's samples to be read from the file (render/samples.py),
    so that nearest far tiles come from levels."""
    from leafmap_tiles.render import samples

    monkeypatch.setattr(decimated, "LARGE_PIXELS", 1000)
    monkeypatch.setattr(samples, "MAX_WINDOW_PIXELS", 1000)


def _native_tile(path):
    with rasterio.open(path) as ds:
        from rasterio.warp import transform_bounds

        w, s, e, n = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
    return TMS.tile((w + e) / 2, (s + n) / 2, 17)


def test_base_level_is_built_in_the_background_once_while_viewed_near_native_zoom(large):
    from leafmap_tiles.render import RenderEngine
    from leafmap_tiles.render.style import parse_style

    path = data(NAIP)
    engine = RenderEngine()
    jobs = []
    engine.background = lambda key, fn: jobs.append((key, fn))
    info = engine.info(path)
    style = parse_style({"indexes": "4,1,2"}, info)
    t = _native_tile(path)
    assert engine._read_tile(path, style, t.z, t.x, t.y, (4, 1, 2), "nearest") is not None
    assert engine.far_reads == 0  # near the native zoom: rio-tiler's path
    assert [k for k, _ in jobs] == [("levels", path)]
    assert engine._read_tile(path, style, t.z, t.x + 1, t.y, (4, 1, 2), "nearest") is not None
    assert len(jobs) == 1  # asked for once
    # the job builds the base level on a thread of its own (its own dataset handle)
    th = threading.Thread(target=jobs[0][1])
    th.start()
    th.join()
    assert engine.levels.built == 1
    # far out, the tiles are cut from levels reduced from it: the file is not read again
    opened = []
    real_build = decimated._build_level
    decimated_build = lambda *a, **k: opened.append(a[1]) or real_build(*a, **k)  # noqa: E731
    try:
        decimated._build_level = decimated_build
        with rasterio.open(path) as ds:
            from rasterio.warp import transform_bounds

            w, s, e, n = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
        for z in (11, 10, 9):
            tz = TMS.tile((w + e) / 2, (s + n) / 2, z)
            img = engine._read_tile(path, style, tz.z, tz.x, tz.y, (4, 1, 2), "nearest")
            assert img is not None and not np.ma.getmaskarray(img.array).all()
    finally:
        decimated._build_level = real_build
    assert engine.far_reads == 3
    assert opened == []  # every level came from the base level in memory
    assert engine.levels.built >= 2


def test_no_background_build_for_rasters_with_overviews_or_small_ones(tmp_path):
    from leafmap_tiles.render import RenderEngine
    from leafmap_tiles.render.style import parse_style

    path = data(NAIP)  # 65,536 pixels: below LARGE_PIXELS
    engine = RenderEngine()
    jobs = []
    engine.background = lambda key, fn: jobs.append(key)
    info = engine.info(path)
    style = parse_style({"indexes": "4,1,2"}, info)
    t = _native_tile(path)
    engine._read_tile(path, style, t.z, t.x, t.y, (4, 1, 2), "nearest")
    assert jobs == []
    ds = _open(NAIP)
    levels = decimated.Levels()
    kw = dict(nodata=0, alpha_index=None, resampling="nearest", levels=levels, level_key=(path, 0))
    assert decimated.base_level_job(ds, path, [1], **kw) is None  # small
    # the same scene with overviews
    copy = tmp_path / "naip_ovr.tif"
    profile = ds.profile
    with rasterio.open(copy, "w", **profile) as out:
        out.write(ds.read())
        out.build_overviews([2, 4], Resampling.average)
    with rasterio.open(copy) as ovr:
        big = decimated.LARGE_PIXELS
        try:
            decimated.LARGE_PIXELS = 1000
            assert decimated.base_level_job(ovr, str(copy), [1], **kw) is None  # has overviews
            assert decimated.base_level_job(ds, path, [1], **kw) is not None  # large, no overviews
            assert decimated.base_level_job(ds, path, [1], **kw) is None  # claimed already
        finally:
            decimated.LARGE_PIXELS = big


def test_level_read_in_two_halves_equals_one_read(monkeypatch):
    """A large raster's level is read by two threads (top and bottom half); each half
    is a whole number of level rows, so the values are GDAL's single read's."""
    from rasterio.enums import Resampling

    monkeypatch.setattr(decimated, "PARALLEL_PIXELS", 1000)
    with rasterio.open(data(NAIP)) as ds:
        assert ds.height % 8 == 0
        for how in (Resampling.average, Resampling.nearest):
            halves = decimated._read_level_data(ds, 4, ds.height // 4, ds.width // 4, how)
            whole = ds.read(out_shape=(ds.count, ds.height // 4, ds.width // 4), resampling=how)
            assert halves.shape == whole.shape
            assert (halves == whole).all()

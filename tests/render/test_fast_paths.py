"""The per-tile shortcuts of the tile servers give exactly what the long way gives
(issue 18, benchmarks/README.md "CPU per tile of serve"):

- rio-tiler's default transform of a source, memoised in server processes
  (:func:`leafmap_tiles.render.reader.memoize_default_transforms`): the same arrays
  as rio-tiler's own ``Reader.part``, and never installed in the user's process;
- Terracotta's stretch of 8/16-bit integers by a table of every value: the same
  indexes as the arithmetic;
- Terracotta's paletted PNG without the free-entry search: the same bytes.
"""

from __future__ import annotations

import subprocess
import sys

import morecantile
import numpy as np
import pytest

from tests.conftest import data

TMS = morecantile.tms.get("WebMercatorQuad")


@pytest.fixture
def memoised(monkeypatch):
    """rio-tiler with the memoised default transform; rasterio's own afterwards."""
    import rio_tiler.utils as rt_utils

    from leafmap_tiles.render import reader

    original = rt_utils.calculate_default_transform
    assert not getattr(original, "memoised", False)  # the test process is not a server
    monkeypatch.setattr(rt_utils, "calculate_default_transform", original)  # restored after the test
    calls = []

    def counting(*args, **kwargs):
        calls.append(args[:2])
        return original(*args, **kwargs)

    monkeypatch.setattr(rt_utils, "calculate_default_transform", counting)
    assert reader.memoize_default_transforms()
    assert rt_utils.calculate_default_transform.__wrapped__ is counting
    reader.memoize_default_transforms()  # a second call does not wrap it twice
    assert rt_utils.calculate_default_transform.__wrapped__ is counting
    return calls


# (file, zooms): UTM / geographic / NAD83 / polar stereographic / across the antimeridian
CASES = [("rmnp-dem.tif", (10, 12, 13)), ("cog.tif", (5, 7, 8)), ("co_elevation_window.tif", (9, 11)),
         ("bremen_sea_ice_conc_2022_9_9.tif", (4, 6)), ("cog_dateline.tif", (6, 8)), ("cog_int16.tif", (7, 9))]


def _tiles(r, zooms):
    w, s, e, n = r.get_geographic_bounds("EPSG:4326")
    lon, lat = ((w + e) / 2, (s + n) / 2) if w <= e else (179.9, (s + n) / 2)
    for z in zooms:
        t = TMS.tile(lon, lat, z)
        for dx, dy in ((0, 0), (1, 0), (0, 1)):
            yield tuple(TMS.xy_bounds(t.x + dx, t.y + dy, t.z))


@pytest.mark.parametrize("name,zooms", CASES)
def test_memoised_default_transform_gives_rio_tilers_arrays(name, zooms, memoised):
    from rio_tiler.constants import WEB_MERCATOR_CRS
    from rio_tiler.io import Reader

    kws = [dict(resampling_method="nearest", reproject_method="nearest"),
           dict(resampling_method="average", reproject_method="bilinear", vrt_options={"add_alpha": True})]
    with Reader(data(name)) as r:
        bounds = list(_tiles(r, zooms))
        import rio_tiler.utils as rt_utils

        memo = rt_utils.calculate_default_transform
        want = []
        rt_utils.calculate_default_transform = memo.__wrapped__  # rio-tiler's own path first
        try:
            for b in bounds:
                for kw in kws:
                    try:
                        want.append(r.part(b, dst_crs=WEB_MERCATOR_CRS, bounds_crs=WEB_MERCATOR_CRS, height=256,
                                           width=256, indexes=1, padding=2, **kw).array)
                    except Exception as exc:  # e.g. a tile outside the raster
                        want.append(type(exc))
        finally:
            rt_utils.calculate_default_transform = memo
        n_direct = len(memoised)
        got = []
        for b in bounds:
            for kw in kws:
                try:
                    got.append(r.part(b, dst_crs=WEB_MERCATOR_CRS, bounds_crs=WEB_MERCATOR_CRS, height=256,
                                      width=256, indexes=1, padding=2, **kw).array)
                except Exception as exc:
                    got.append(type(exc))
    assert n_direct >= len(bounds)  # rio-tiler computes it for every tile
    assert len(memoised) - n_direct <= 2  # memoised: once per source (and CRS object)
    assert sum(isinstance(w, np.ndarray) for w in want) >= len(want) // 2
    for w, g in zip(want, got):
        if not isinstance(w, np.ndarray):
            assert g is w
            continue
        assert np.array_equal(np.ma.getdata(w), np.ma.getdata(g), equal_nan=True)
        assert np.array_equal(np.ma.getmaskarray(w), np.ma.getmaskarray(g))


def test_default_transforms_are_not_memoised_in_the_users_process():
    """Only the server processes install it: importing the package (map, client,
    render, store) leaves rio-tiler as it is."""
    code = ("import leafmap_tiles, leafmap_tiles.render.reader, leafmap_tiles.render.terracotta, "
            "leafmap_tiles.store, leafmap_tiles.client\n"
            "from leafmap_tiles import Map\n"
            "import rio_tiler.utils as u\n"
            "assert not getattr(u.calculate_default_transform, 'memoised', False)\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16"])
def test_integer_stretch_by_table_is_the_arithmetic(dtype):
    from leafmap_tiles.render import terracotta as tcr

    info = np.iinfo(dtype)
    every = np.arange(info.min, info.max + 1, dtype=dtype)
    rng = np.random.default_rng(7)
    values = rng.permutation(np.resize(every, 256 * 256)).reshape(256, 256)
    mask = rng.random(values.shape) < 0.25
    for lo, hi in [(500, 3500), (-0.1, 0.9), (0, 255), (-100.5, 100.25), (7, 7), (3000, 100), (-40000, 70000)]:
        for d in (values, np.ma.masked_array(values, mask=mask)):
            got = tcr.to_index(d, lo, hi)
            want = tcr._to_index(d, lo, hi)  # the float64 arithmetic, pixel by pixel
            assert got.dtype == np.uint8 and np.array_equal(got, want), (lo, hi)
    # a hand-checked value: 2000 on [500, 3500] is half way: 1 + 127 = 128
    assert tcr.to_index(np.full((128, 128), 2000, dtype="uint16"), 500, 3500)[0, 0] == 128


@pytest.mark.parametrize("colormap", [None, "viridis", "rdylgn"])
def test_terracotta_palette_png_is_png_lut(colormap):
    from leafmap_tiles.render import encode
    from leafmap_tiles.render import terracotta as tcr

    rng = np.random.default_rng(3)
    index = rng.integers(0, 256, size=(256, 256)).astype(np.uint8)
    full = np.where(index == 0, 1, index).astype(np.uint8)  # no transparent pixel
    palette = tcr.palette_for(colormap)
    for idx in (index, full, np.zeros_like(index)):
        assert encode.png_palette(idx, palette) == encode.png_lut(idx, idx != 0, palette)
        assert tcr.singleband_png(idx, colormap) == encode.png_lut(idx, idx != 0, palette)


@pytest.mark.parametrize("name,zooms", CASES + [("cog_nodata_nan.tif", (9, 11))])
def test_single_coordinate_operation_gives_gdals_own_pixels(name, zooms):
    """serve hands GDAL's warper the PROJ pipeline when it is the only operation from
    the raster's CRS to Web Mercator: the same arrays as GDAL's own search (nearest
    and bilinear warps, overview and full-resolution reads)."""
    from rio_tiler.constants import WEB_MERCATOR_CRS
    from rio_tiler.io import Reader

    from leafmap_tiles.render.terracotta import coordinate_operation

    with Reader(data(name)) as r:
        op = coordinate_operation(r.dataset.crs)
        if name == "co_elevation_window.tif":  # NAD83: several operations to WGS 84
            assert op is None
            return
        assert op and op.startswith("+proj=pipeline")
        assert coordinate_operation(r.dataset.crs) is op  # once per CRS object
        n = 0
        for b in _tiles(r, zooms):
            for kw in (dict(resampling_method="nearest", reproject_method="nearest", vrt_options={}),
                       dict(resampling_method="average", reproject_method="bilinear",
                            vrt_options={"add_alpha": True, "nodata": None})):
                args = dict(dst_crs=WEB_MERCATOR_CRS, bounds_crs=WEB_MERCATOR_CRS, height=256, width=256,
                            indexes=1, padding=2)
                try:
                    want = r.part(b, **args, **kw).array
                except Exception as exc:
                    with pytest.raises(type(exc)):
                        r.part(b, **args, **{**kw, "vrt_options": {**kw["vrt_options"], "COORDINATE_OPERATION": op}})
                    continue
                got = r.part(b, **args, **{**kw, "vrt_options": {**kw["vrt_options"], "COORDINATE_OPERATION": op}}).array
                assert np.array_equal(np.ma.getdata(want), np.ma.getdata(got), equal_nan=True)
                assert np.array_equal(np.ma.getmaskarray(want), np.ma.getmaskarray(got))
                n += int((~np.ma.getmaskarray(got)).sum())
        assert n > 10_000


def test_no_coordinate_operation_where_proj_lacks_a_grid():
    """nlcd.tif (NAD83 UTM 12N): PROJ lists operations it cannot use without their
    grids, so GDAL keeps its own choice."""
    import rasterio

    from leafmap_tiles.render.terracotta import coordinate_operation

    with rasterio.open(data("nlcd.tif")) as src:
        assert coordinate_operation(src.crs) is None

"""The cost model that decides between rio-tiler's own tile read and the decimated
read (``decimated.rio_tiler_cost``), checked against what GDAL really decodes.

GDAL reports the source window its warper reads (``GDALWarpKernel()::GWK...()
Src=x,y,WxH`` in its debug output).  Found with the global 7200 x 3600 float raster
``bess_NDVI_maximum_cog.tif`` of ../shared/data (overviews 2-16): its z1 tile has a
332 x 331 VRT read at 256 (no VRT overview), and GDAL warped the 3600 x 1702
full-resolution window (120-150 ms cold), where the model had assumed the overview
closest to the VRT's resolution (1/8: 1.8 tile areas).  With a nodata value (which
makes the warper test every pixel) the model counts that full window.  The raster here
is a smaller one of the same kind (global, geographic, overviews, nodata), made from a
real DEM.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rio_tiler.io import Reader
from rio_tiler.utils import get_vrt_transform

from leafmap_tiles.render import decimated
from tests.conftest import data


# bess_NDVI_maximum_cog.tif's CRS: geographic on the Clarke 1866 ellipsoid.  rio-tiler
# builds its VRT at the tile's resolution for it (332 x 331 at z1), where for EPSG:4326
# it builds one at the raster's resolution and GDAL reads a VRT overview
CLARKE_1866 = ('GEOGCS["unknown",DATUM["Unknown based on Clarke 1866 ellipsoid",SPHEROID["Clarke 1866",'
               '6378206.4,294.978698213898]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433,'
               'AUTHORITY["EPSG","9122"]],AXIS["Latitude",NORTH],AXIS["Longitude",EAST]]')


@pytest.fixture(scope="module")
def global_cog(tmp_path_factory):
    """A 3600 x 1800 global float32 raster in bess_NDVI_maximum_cog.tif's CRS with
    overviews 2..16: the real elevations of tests/data/rmnp-dem.tif, tiled (the values
    do not matter here, only the grid and the overviews)."""
    with rasterio.open(data("rmnp-dem.tif")) as src:
        dem = src.read(1, out_shape=(450, 450), resampling=Resampling.average).astype("float32")
    arr = np.tile(dem, (4, 8))
    path = tmp_path_factory.mktemp("cost") / "global.tif"
    profile = dict(driver="GTiff", width=3600, height=1800, count=1, dtype="float32", crs=rasterio.crs.CRS.from_wkt(CLARKE_1866),
                   transform=rasterio.transform.from_bounds(-180, -90, 180, 90, 3600, 1800),
                   tiled=True, blockxsize=512, blockysize=512, compress="deflate", nodata=-9999.0)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr, 1)
        dst.build_overviews([2, 4, 8, 16], Resampling.average)
    return str(path)


def _gdal_source_pixels(path, x, y, z) -> int:
    """Pixels of the source window GDAL's warper reads for rio-tiler's tile z/x/y."""
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda rec: records.append(rec.getMessage())
    log = logging.getLogger("rasterio._err")
    old = log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        with rasterio.Env(CPL_DEBUG=True), Reader(path) as r:
            r.tile(x, y, z)
    finally:
        log.removeHandler(handler)
        log.setLevel(old)
    chunks = set(re.findall(r"GWK\w*\(\) Src=(\d+,\d+,\d+x\d+) Dst=(\S+)", "\n".join(records)))
    assert chunks, "GDAL printed no warp kernel line"
    # the warper may cut the work into several chunks (summed); the same chunk warped
    # again (the mask pass) reads blocks already in GDAL's cache (counted once)
    return sum(int(wh.split("x")[0]) * int(wh.split("x")[1]) for wh in (c[0].split(",")[2] for c in chunks))


@pytest.mark.parametrize("x,y,z", [(1, 0, 1), (2, 1, 2), (0, 0, 0)])
def test_cost_counts_the_pixels_gdal_decodes(global_cog, x, y, z):
    with Reader(global_cog) as r:
        ds = r.dataset
        bounds = tuple(r.tms.xy_bounds(x, y, z))
        win = decimated.source_window(ds, bounds)
        cost = decimated.rio_tiler_cost(ds, bounds, 256, 256, ds.overviews(1), win, nodata=True)
        _, vw, vh = get_vrt_transform(ds, bounds, 256, 256, dst_crs="EPSG:3857")
    decoded = _gdal_source_pixels(global_cog, x, y, z)
    # the model's tile areas are at least what GDAL decodes (the window is rounded out
    # to whole pixels and clipped by GDAL to the raster), and not far above it
    assert cost * 256 * 256 >= 0.9 * decoded, (cost, decoded, vw, vh)
    assert cost * 256 * 256 <= 1.6 * max(decoded, vw * vh), (cost, decoded, vw, vh)


def test_such_a_tile_is_read_decimated_with_rio_tilers_mask(global_cog):
    """The z1 tile of the global raster goes to the decimated read, and its mask is
    rio-tiler's; its values are those of the raster's pixels (nearest: point samples,
    so compared by their mean over the tile, within 1 % of the data range)."""
    from leafmap_tiles.render.engine import RenderEngine
    from leafmap_tiles.render.style import Style

    engine = RenderEngine()
    before = engine.far_reads
    engine.tile(global_cog, Style(), 1, 1, 0)
    assert engine.far_reads == before + 1
    with Reader(global_cog) as r:
        ref = r.tile(1, 0, 1).array
        ds = r.dataset
        bounds = tuple(r.tms.xy_bounds(1, 0, 1))
        ours = decimated.read_tile(ds, bounds, 256, 256, [1], nodata=ds.nodata, dec=decimated.decimation(ds, bounds, 256))
        lo, hi = float(ds.statistics(1).min), float(ds.statistics(1).max)
    assert (np.ma.getmaskarray(ours) == np.ma.getmaskarray(ref)).all()
    assert abs(float(ours.mean()) - float(ref.mean())) <= 0.01 * (hi - lo)


def test_without_nodata_the_tile_stays_on_rio_tilers_path(global_cog, tmp_path):
    """The same raster without its nodata tag: the warper does not test every pixel, the
    model keeps counting the overview closest to the VRT (fitted views such as
    cog_dateline.tif's stay rio-tiler's, tests/core/test_add_raster.py), and the z1 tile
    is rio-tiler's, pixel for pixel."""
    import shutil

    from leafmap_tiles.render.engine import RenderEngine
    from leafmap_tiles.render.style import Style

    path = str(tmp_path / "no_nodata.tif")
    shutil.copy(global_cog, path)
    with rasterio.open(path, "r+") as ds:
        ds.nodata = None
    with Reader(path) as r:
        ds = r.dataset
        bounds = tuple(r.tms.xy_bounds(1, 0, 1))
        win = decimated.source_window(ds, bounds)
        with_nodata = decimated.rio_tiler_cost(ds, bounds, 256, 256, ds.overviews(1), win, nodata=True)
        without = decimated.rio_tiler_cost(ds, bounds, 256, 256, ds.overviews(1), win, nodata=False)
        ref = r.tile(1, 0, 1).array
    assert without < decimated.MIN_DECIMATION ** 2 <= with_nodata
    engine = RenderEngine()
    img = engine._member_tile(path, 1, 0, 1, Style(), tilesize=256, indexes=(1,), resampling_method="nearest",
                              reproject_method="nearest")
    assert engine.far_reads == 0
    assert np.array_equal(img.array.data, ref.data) and np.array_equal(np.ma.getmaskarray(img.array),
                                                                      np.ma.getmaskarray(ref))

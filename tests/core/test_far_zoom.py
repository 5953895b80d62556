"""Far below a raster's native zoom, tiles are read from the window the tile covers at
the tile's resolution (leafmap_tiles/render/decimated.py) instead of rio-tiler's warped
VRT at the raster's resolution over the whole tile.

References: rio-tiler's ``Reader.tile`` on the same file and tile, at zooms where it
still finishes (it takes ~35 s at zoom 8 on the NAIP file, see benchmarks/zoom.py).
With nearest resampling the far-zoom path computes rio-tiler's own samples
(leafmap_tiles/render/samples.py): checked by hand on every raster of ../shared/data
at each zoom down to native-10 where rio-tiler finishes (0 differing pixels against
rio-tiler with exact transforms; the GCP-referenced file is left to rio-tiler).
Near the native zoom (and where an overview close to the tile's resolution exists)
rio-tiler's own path is kept: tests/core/test_add_raster.py pins those pixels.
"""

from __future__ import annotations

import warnings

import morecantile
import numpy as np
import pytest
import requests
from rio_tiler.io import Reader

from tests.conftest import data
from tests.core.helpers import decode

TMS = morecantile.tms.get("WebMercatorQuad")
NAIP = "naip/m_4709963_se_14_1_20200831.tif"
LANDSAT = "landsat_annual/1985.tif"


def _centre(path):
    with Reader(path) as r:
        w, s, e, n = r.get_geographic_bounds("epsg:4326")
    return (w + e) / 2, (s + n) / 2


def _rio_tiler(path, z, x, y, indexes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Reader(path) as r:
            img = r.tile(x, y, z, tilesize=256, indexes=indexes,
                         resampling_method="nearest", reproject_method="nearest")
    return img.array


def _rio_tiler_exact(path, z, x, y, indexes):
    """rio-tiler's tile with GDAL's warp transform computed exactly for every pixel
    (``tolerance`` ~0 instead of the default 0.125-pixel linear approximation)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Reader(path) as r:
            img = r.tile(x, y, z, tilesize=256, indexes=indexes, resampling_method="nearest",
                         reproject_method="nearest", vrt_options={"tolerance": 1e-9})
    return img.array


# far-out tiles read by the far-zoom path (engine.far_reads counts them): multi-band
# nodata rasters read band subsets (GDAL samples warped VRT blocks), the others read
# every band (GDAL warps into the tile grid); with overviews chosen (cog_int16, nlcd,
# bahamas) or not (NAIP, Landsat, cog_rgba with its alpha band)
FAR = [
    (NAIP, 11, (4, 1, 2)), (NAIP, 10, (4, 1, 2)), (LANDSAT, 7, (1, 2, 3)),
    ("cog_int16.tif", 2, (1,)), ("nlcd.tif", 8, (1,)), ("bahamas_rgb.tif", 5, (1, 2, 3)),
    ("cog_rgba.tif", 16, (1, 2, 3)), ("co_elevation_window.tif", 9, (1,)),
]


def _far_tile(name, zoom, indexes):
    from leafmap_tiles.render import RenderEngine
    from leafmap_tiles.render.style import parse_style

    path = data(name)
    engine = RenderEngine()
    lon, lat = _centre(path)
    t = TMS.tile(lon, lat, zoom)
    info = engine.info(path)
    style = parse_style({"indexes": ",".join(map(str, indexes))}, info)
    img = engine._read_tile(path, style, t.z, t.x, t.y, indexes, "nearest")
    assert engine.far_reads == 1, "the far-zoom path was not used"
    return path, t, img.array


@pytest.mark.parametrize("name,zoom,indexes", FAR)
def test_far_tile_equals_rio_tiler_with_exact_transforms(name, zoom, indexes):
    """Every pixel (values and mask) is the one rio-tiler's Reader.tile gives when GDAL
    transforms each pixel exactly: same level (overview), same sample positions."""
    path, t, ours = _far_tile(name, zoom, indexes)
    ref = _rio_tiler_exact(path, t.z, t.x, t.y, indexes)
    om, rm = np.ma.getmaskarray(ours), np.ma.getmaskarray(ref)
    assert om.shape == rm.shape == (len(indexes), 256, 256)
    assert (om == rm).all(), f"mask differs at {(om != rm).sum()} pixels"
    assert (~om).sum() > 0  # the raster covers part of the tile
    assert (ours.data[~om] == ref.data[~om]).all(), f"{(ours.data[~om] != ref.data[~om]).sum()} pixels differ"


@pytest.mark.parametrize("name,zoom,indexes", FAR)
def test_far_tile_against_rio_tilers_default_output(name, zoom, indexes):
    """Against rio-tiler's default output (GDAL interpolates its warp transform
    linearly, within 0.125 pixel): the mask is identical, and only samples that fall
    within that error of a raster pixel's edge take the neighbouring pixel (measured:
    0-3.3 % of the drawn pixels; bahamas_rgb z5 173 of 5189, NAIP z11 14 of 1800)."""
    path, t, ours = _far_tile(name, zoom, indexes)
    ref = _rio_tiler(path, t.z, t.x, t.y, indexes)
    om, rm = np.ma.getmaskarray(ours), np.ma.getmaskarray(ref)
    assert (om == rm).all(), f"mask differs at {(om != rm).sum()} pixels"
    same = (ours.data == ref.data)[~om].mean()
    assert same >= 0.96, same


def test_native_zoom_tile_keeps_rio_tiler_path():
    from leafmap_tiles.render import RenderEngine
    from leafmap_tiles.render.style import parse_style

    path = data(NAIP)
    engine = RenderEngine()
    info = engine.info(path)
    lon, lat = _centre(path)
    t = TMS.tile(lon, lat, info.maxzoom)
    style = parse_style({"indexes": "4,1,2"}, info)
    img = engine._read_tile(path, style, t.z, t.x, t.y, (4, 1, 2), "nearest")
    assert engine.far_reads == 0
    ref = _rio_tiler(path, t.z, t.x, t.y, (4, 1, 2))
    assert (np.ma.getmaskarray(img.array) == np.ma.getmaskarray(ref)).all()
    assert (img.array.data == ref.data).all()


def test_zoomed_out_map_tiles_over_http(m):
    """The session server answers far-out tiles of a multi-band nodata raster (the case
    rio-tiler takes tens of seconds on) with the raster drawn where it lies: at zoom 9
    the same pixels as rio-tiler's tile (1.9 s there), and a few pixels further out."""
    layer = m.add_raster(data(NAIP), indexes=[4, 1, 2])
    lon, lat = _centre(data(NAIP))
    drawn = {}
    for z in (9, 7, 5):
        t = TMS.tile(lon, lat, z)
        url = layer.url.replace("{z}", str(z)).replace("{x}", str(t.x)).replace("{y}", str(t.y))
        r = requests.get(url, timeout=120)
        assert r.status_code == 200, r.text
        rgba = decode(r.content)
        drawn[z] = rgba[..., 3] > 0
        if z == 9:
            ref = _rio_tiler(data(NAIP), t.z, t.x, t.y, (4, 1, 2))
            assert (drawn[z] == ~np.ma.getmaskarray(ref).all(axis=0)).all()
    assert drawn[9].sum() > drawn[7].sum() >= drawn[5].sum() >= 1


def test_striped_raster_reads_only_sampled_rows_with_rio_tilers_pixels(tmp_path, monkeypatch):
    """A striped raster whose samples' window is too large to read whole (a global
    raster at zoom 0-1) is read on the rows that hold samples: still rio-tiler's pixels."""
    import rasterio

    from leafmap_tiles.render import samples

    src = data("co_elevation_window.tif")
    path = str(tmp_path / "striped.tif")
    with rasterio.open(src) as ds:
        profile = ds.profile
        profile.update(tiled=False, blockysize=1, compress="deflate")
        profile.pop("blockxsize", None)
        with rasterio.open(path, "w", **profile) as out:
            out.write(ds.read())
    monkeypatch.setattr(samples, "MAX_WINDOW_PIXELS", 60000)  # below the 512 x 512 window, above its rows
    reads = []
    real = samples._striped_rows
    monkeypatch.setattr(samples, "_striped_rows", lambda *a: reads.append(1) or real(*a))
    lon, lat = _centre(path)
    with rasterio.open(path) as ds:
        assert ds.block_shapes[0] == (1, ds.width) and ds.width * ds.height > 60000
        for z in (9, 8):
            t = TMS.tile(lon, lat, z)
            ours = samples.read_tile(ds, tuple(TMS.xy_bounds(t)), 256, 256, [1], nodata=ds.nodata)
            assert ours is not None
            ref = _rio_tiler_exact(path, t.z, t.x, t.y, (1,))
            om, rm = np.ma.getmaskarray(ours), np.ma.getmaskarray(ref)
            assert (om == rm).all() and (~om).sum() > 0
            assert (ours.data[~om] == ref.data[~om]).all()
    assert reads  # the row reads were used

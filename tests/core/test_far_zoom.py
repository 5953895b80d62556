"""Far below a raster's native zoom, tiles are read from the window the tile covers at
the tile's resolution (leafmap_tiles/render/decimated.py) instead of rio-tiler's warped
VRT at the raster's resolution over the whole tile.

References: rio-tiler's ``Reader.tile`` on the same file and tile, at zooms where it
still finishes (it takes ~35 s at zoom 8 on the NAIP file, see benchmarks/zoom.py).
Measured by hand when this was written (NAIP 2020, bands 4,1,2, nodata 0):
- the alpha (which pixels have data) is identical to rio-tiler's at zooms 10 and 11;
- with nearest resampling both are point samples of the image at slightly different
  positions (rio-tiler samples its VRT, we sample a 2x-decimated read), so single pixels
  differ; the mean of each band over the tile agrees within 1.9 DN (z10: 132.3/72.3/96.9
  against rio-tiler's 132.8/70.5/96.9).
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


@pytest.mark.parametrize("name,zoom,indexes", [(NAIP, 11, (4, 1, 2)), (NAIP, 10, (4, 1, 2)), (LANDSAT, 7, (1, 2, 3))])
def test_far_tile_alpha_equals_rio_tiler_and_band_means_agree(name, zoom, indexes):
    from leafmap_tiles.render import RenderEngine

    path = data(name)
    engine = RenderEngine()
    lon, lat = _centre(path)
    t = TMS.tile(lon, lat, zoom)
    rdr = engine.reader(path)
    info = engine.info(path)
    from leafmap_tiles.render.style import parse_style

    style = parse_style({"indexes": ",".join(map(str, indexes))}, info)
    img = engine._read_tile(path, style, t.z, t.x, t.y, indexes, "nearest")
    assert engine.far_reads == 1, "the far-zoom path was not used"
    assert rdr.dataset.nodata == 0 and rdr.dataset.count == 4  # multi-band with a nodata tag
    ours = img.array
    ref = _rio_tiler(path, t.z, t.x, t.y, indexes)
    om, rm = np.ma.getmaskarray(ours), np.ma.getmaskarray(ref)
    assert om.shape == rm.shape == (3, 256, 256)
    assert (om == rm).all(), f"mask differs at {(om != rm).sum()} pixels"
    valid = ~om
    assert valid[0].sum() > 100  # the raster covers part of the tile
    for b in range(3):
        a = ours.data[b][valid[b]].astype(float).mean()
        r = ref.data[b][valid[b]].astype(float).mean()
        assert abs(a - r) <= 2.0, (b, a, r)
    # every value drawn is a real pixel value of the raster (nearest: no invented colours)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = rdr.dataset.read(list(indexes))
    for b in range(3):
        assert np.isin(np.unique(ours.data[b][valid[b]]), np.unique(full[b])).all()


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

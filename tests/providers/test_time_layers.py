"""create_time_layers on real search results: one layer per date, a mosaic where a
date has two neighbouring tiles, scale/offset/nodata from the items."""

from __future__ import annotations

import io

import morecantile
import numpy as np
import pytest
import rasterio

from terrascope_catalog import CATALOG, NODATA, OFFSET, PASSWORD, SCALE, USERNAME

TMS = morecantile.tms.get("WebMercatorQuad")
WEST, EAST = (next(s for s in CATALOG if s.part == p) for p in ("west", "east"))


def _rgba(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def _inside_only(ndvi_assets, spec, other):
    """A (lon, lat) inside ``spec``'s valid data and outside ``other``'s footprint."""
    w, s, e, n = ndvi_assets.info[spec.id]["bbox"]
    ow, os_, oe, on = ndvi_assets.info[other.id]["bbox"]
    lat = (s + n) / 2
    lon = (max(w, oe) + e) / 2 if spec.part == "east" else (w + min(e, ow)) / 2
    return lon, lat


@pytest.fixture
def layers(terrascope_local):
    terrascope_local.login(USERNAME, PASSWORD, quiet=True)
    items = terrascope_local.search_ndvi(bbox=[-99.2, 46.9, -99.0, 47.1], start="2009-01-01", end="2020-12-31",
                                         max_cloud_cover=None)
    out = terrascope_local.create_time_layers(items)
    yield out
    for layer in out.values():
        layer.release()


def test_one_layer_per_date_with_physical_units(layers):
    assert list(layers) == sorted({s.date for s in CATALOG})
    for date, layer in layers.items():
        assert (layer.scale, layer.offset) == (SCALE, OFFSET)
        assert layer.style["colormap"] == "RdYlGn"
        assert layer.style["vmin"] == "0.0" and layer.style["vmax"] == "250.0"
        assert layer.style["nodata"] == repr(float(NODATA))


def test_shared_date_shows_both_tiles(layers, ndvi_assets):
    layer = layers[WEST.date]
    assert isinstance(layer.info["path"], list) and len(layer.info["path"]) == 2
    for spec, other in ((EAST, WEST), (WEST, EAST)):
        lon, lat = _inside_only(ndvi_assets, spec, other)
        t = TMS.tile(lon, lat, 16)
        png = layer.server.tile(layer.source_id, t.z, t.x, t.y, layer.style)
        assert (_rgba(png)[..., 3] > 0).mean() > 0.5, f"{spec.part} tile of {spec.date} missing from the mosaic"
        # the value served is the asset's DN at that point (read directly with rasterio + auth)
        pt = layer.server.point(layer.source_id, lon, lat, layer.style)
        with rasterio.Env(GDAL_HTTP_AUTH="BASIC", GDAL_HTTP_USERPWD=f"{USERNAME}:{PASSWORD}"):
            with rasterio.open(str(ndvi_assets.path(spec))) as ds:
                from rasterio.warp import transform as wt

                xs, ys = wt("EPSG:4326", ds.crs, [lon], [lat])
                dn = next(ds.sample([(xs[0], ys[0])]))[0]
        assert pt["values"] == [None if dn == NODATA else int(dn)]


def test_time_slider_over_search_results_shows_each_dates_mosaic(layers, ndvi_assets):
    from leafmap_tiles import Map

    m = Map(basemap=None)
    try:
        slider = m.add_time_slider(layers)
        assert slider.labels == list(layers)
        k = slider.labels.index(EAST.date)
        slider.slider.value = k
        shown = slider.current_layer
        assert shown is layers[EAST.date] and shown.opacity == 1.0
        lon, lat = _inside_only(ndvi_assets, EAST, WEST)
        t = TMS.tile(lon, lat, 16)
        url = shown.url.replace("{z}", str(t.z)).replace("{x}", str(t.x)).replace("{y}", str(t.y))
        import requests

        r = requests.get(url, timeout=60)
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"  # protected asset
        assert (_rgba(r.content)[..., 3] > 0).mean() > 0.5  # covered only by the 2nd tile of the date
        series = dict(slider.values_at(lon, lat))
        assert series[WEST.date] is not None and len(series) == len(layers)
    finally:
        m.close()

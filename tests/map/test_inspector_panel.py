"""Click inspector (values per band, nodata) and the layer panel (sync both ways)."""

from __future__ import annotations

import numpy as np
import rasterio
from rasterio.windows import Window

from tests.conftest import data
from tests.map.helpers import click, pixel_lonlat


def _rasterio_bands(path, row, col):
    with rasterio.open(path) as ds:
        a = ds.read(window=Window(col, row, 1, 1), masked=True)
    return [None if np.ma.getmaskarray(a)[i, 0, 0] else int(a[i, 0, 0]) for i in range(a.shape[0])]


def test_inspector_values_per_band_with_nodata(m):
    path = data("bahamas_rgb.tif")
    layer = m.add_raster(path)
    assert m.inspector.control not in m.controls  # appears with the first click
    for row, col in [(359, 120), (0, 0), (200, 500)]:
        lon, lat = pixel_lonlat(path, row, col)
        click(m, lon, lat)
        got = m.inspector.last["layers"][0]
        assert got["layer"] is layer
        assert got["values"] == list(zip(["b1", "b2", "b3"], _rasterio_bands(path, row, col)))
    assert m.inspector.control in m.controls
    # (0, 0) is nodata in every band, shown as such
    lon, lat = pixel_lonlat(path, 0, 0)
    click(m, lon, lat)
    assert m.inspector.last["layers"][0]["values"] == [("b1", None), ("b2", None), ("b3", None)]
    assert "b1: nodata, b2: nodata, b3: nodata" in m.inspector.html.value
    # a click outside the raster
    click(m, 10.0, 10.0)
    assert m.inspector.last["layers"][0]["inside"] is False
    assert "outside" in m.inspector.html.value


def test_inspector_known_pixel(m):
    path = data("bahamas_rgb.tif")
    m.add_raster(path)
    lon, lat = pixel_lonlat(path, 359, 120)
    click(m, lon, lat)
    assert m.inspector.last["layers"][0]["values"] == [("b1", 8), ("b2", 69), ("b3", 92)]
    assert "b1: 8, b2: 69, b3: 92" in m.inspector.html.value
    # nodata in the first band only
    lon, lat = pixel_lonlat(path, 27, 285)
    click(m, lon, lat)
    assert m.inspector.last["layers"][0]["values"] == [("b1", None), ("b2", 5), ("b3", 5)]
    assert "b1: nodata, b2: 5, b3: 5" in m.inspector.html.value


def test_inspector_can_be_switched_off():
    from leafmap_tiles import Map

    m = Map(basemap=None, inspector=False, layer_control=False)
    try:
        assert m.inspector is None and m.layer_control is None
        m.add_raster(data("bahamas_rgb.tif"))
        click(m, -77.8, 24.5)
        import ipyleaflet

        # zoom, attribution and the fullscreen button (on by default, as in leafmap): no values box
        assert [type(c) for c in m.controls] == [ipyleaflet.ZoomControl, ipyleaflet.AttributionControl,
                                                 ipyleaflet.FullScreenControl]
    finally:
        m.close()


def test_layer_panel_is_on_by_default_and_syncs_both_ways(m):
    lyr = m.add_raster(data("bahamas_rgb.tif"), layer_name="rgb")
    panel = m.layer_control
    assert panel.control in m.controls
    cb, sl = panel.row(lyr)
    assert cb.description == "rgb" and cb.value is True and sl.value == 1.0
    # widget -> layer (the user ticks the box, moves the slider)
    cb.value = False
    sl.value = 0.35
    assert lyr.visible is False and lyr.opacity == 0.35
    # layer -> widget (code changes the layer)
    lyr.visible = True
    lyr.opacity = 0.8
    assert cb.value is True and sl.value == 0.8
    # new layers get rows, top layer first; removed layers lose theirs
    top = m.add_raster(data("cog.tif"), layer_name="cog")
    assert [row[0].name for row in panel.rows.values()] == ["cog", "rgb"]
    m.remove(top)
    assert list(panel.rows) == [lyr.model_id]
    panel.expanded = True
    assert panel.list.layout.display == "flex"


def test_layer_panel_controls_the_time_slider(m):
    from tests.map.helpers import NDVI, naip_files

    ts = m.add_time_slider(naip_files()[:3], expression=NDVI, colormap="RdYlGn", vmin=-0.2, vmax=0.6)
    cb, sl = m.layer_control.row(ts.group)
    sl.value = 0.4
    assert ts.current_layer.opacity == 0.4
    cb.value = False
    assert ts.visible_layers == []
    cb.value = True
    ts.slider.value = 1
    assert ts.visible_layers == [ts.layers[1]] and ts.layers[1].opacity == 0.4


def test_closing_the_slider_hides_its_values_box(m):
    from tests.map.helpers import naip_files

    files = naip_files()[:3]
    slider = m.add_time_slider(files, expression="(b4-b1)/(b4+b1)")
    lon, lat = pixel_lonlat(files[0], 100, 100)
    m.inspector.click(lon, lat)
    assert m.inspector.control in m.controls
    slider.close()
    assert m.inspector.control not in m.controls and m.inspector.html.value == ""

"""slider.values_at and the time series on click, against rasterio reads of every date."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from tests.map.helpers import NDVI, click, copy_with_nodata_block, naip_files, pixel_lonlat, rasterio_ndvi

# pixel (row, col) centres of the 2009 window: fields, a road, corners
PIXELS = [(10, 10), (40, 200), (128, 128), (200, 60), (250, 250), (3, 252), (170, 180)]


@pytest.fixture
def naip_with_hole(tmp_path):
    """The ten NAIP windows; 2012's has a 21x21 block of nodata (0 in every band)."""
    out = []
    for f in naip_files():
        dst = str(tmp_path / os.path.basename(f))
        if "20120731" in f:
            copy_with_nodata_block(f, dst, slice(100, 121), slice(100, 121))
        else:
            with open(f, "rb") as a, open(dst, "wb") as b:
                b.write(a.read())
        out.append(dst)
    return out


def test_values_at_equals_rasterio_in_every_date(m):
    files = naip_files()
    ts = m.add_time_slider(files, expression=NDVI, colormap="RdYlGn", vmin=-0.2, vmax=0.6)
    checked = 0
    for row, col in PIXELS:
        lon, lat = pixel_lonlat(files[0], row, col)
        series = ts.values_at(lon, lat)
        assert [s[0] for s in series] == ts.labels
        for (label, value), f in zip(series, files):
            expected = rasterio_ndvi(f, lon, lat)
            if expected is None:
                assert value is None
            else:
                assert value == expected, (label, row, col)  # same float64 arithmetic: exact
                checked += 1
    assert checked >= 60  # nearly all pixel/date pairs hold data
    # a value checked by hand: 2009, pixel (128, 128) holds R, G, B, NIR = 91, 100, 88, 96
    lon, lat = pixel_lonlat(files[0], 128, 128)
    assert ts.values_at(lon, lat)[0] == ("2009-08-18", 5 / 187)


def test_nodata_gives_none(m, naip_with_hole):
    ts = m.add_time_slider(naip_with_hole, expression=NDVI, colormap="RdYlGn", vmin=-0.2, vmax=0.6)
    lon, lat = pixel_lonlat(naip_with_hole[2], 110, 110)
    series = dict(ts.values_at(lon, lat))
    assert series["2012-07-31"] is None
    assert rasterio_ndvi(naip_with_hole[2], lon, lat) is None
    for label, f in zip(ts.labels, naip_with_hole):
        if label != "2012-07-31":
            assert series[label] == rasterio_ndvi(f, lon, lat)
    # outside every frame
    assert ts.values_at(-99.5, 47.0) == [(label, None) for label in ts.labels]


def test_click_plots_the_series_with_one_request(m, naip_with_hole):
    other = m.add_raster(naip_files()[0], indexes=[4, 1, 2])
    ts = m.add_time_slider(naip_with_hole, expression=NDVI, colormap="RdYlGn", vmin=-0.2, vmax=0.6)
    lon, lat = pixel_lonlat(naip_with_hole[2], 110, 110)
    server = m.server
    calls = []
    original = server._request

    def counting(method, path, *a, **kw):
        calls.append((method, path))
        return original(method, path, *a, **kw)

    server._request = counting
    try:
        click(m, lon, lat)
    finally:
        server._request = original
    assert calls == [("POST", "points")]
    assert ts.shown_series == ts.values_at(lon, lat)
    assert ts.shown_series[2] == ("2012-07-31", None)
    assert ts.series_control in m.controls
    img = Image.open(io.BytesIO(ts.series_image.value))
    assert img.size == (330, 190)  # small enough to leave the map's centre and controls free (issue 12)
    # the inspector shows both layers from the same answer
    names = [r["name"] for r in m.inspector.last["layers"]]
    assert names == [other.name, f"{ts.group.name} [2009-08-18]"]
    ts.slider.value = 2
    click(m, lon, lat)
    row = m.inspector.last["layers"][1]
    assert row["name"].endswith("[2012-07-31]") and row["values"] == [(NDVI, None)]
    assert "nodata" in m.inspector.html.value


def test_series_plot_has_gaps_for_nodata():
    from leafmap_tiles.map.time_slider import plot_series

    png = plot_series([("2009-08-18", 0.1), ("2010-06-29", None), ("2012-07-31", 0.3)])
    assert Image.open(io.BytesIO(png)).format == "PNG"
    assert np.asarray(Image.open(io.BytesIO(png))).shape[:2] == (190, 330)

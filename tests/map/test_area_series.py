"""slider.series(geometry) and the draw control: a DataFrame of area statistics per frame,
against rasterio + numpy reading every date's file."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely.geometry as sg
from PIL import Image

from leafmap_tiles.errors import BadRequestError
from tests.core.test_area_statistics import FIELD, lonlat_polygon, reference
from tests.map.helpers import NDVI, copy_with_nodata_block, naip_files


@pytest.fixture
def files():
    return naip_files()


def draw(control, geometry) -> None:
    """What the browser sends when the user finishes a polygon with the draw tool."""
    control._handle_leaflet_event(None, {"event": "draw:created", "geo_json": {
        "type": "Feature", "properties": {"style": {}}, "geometry": geometry}}, [])


def test_series_equals_rasterio_for_every_date(m, files):
    ts = m.add_time_slider(files, expression=NDVI, colormap="RdYlGn", vmin=-0.2, vmax=0.6)
    poly = lonlat_polygon(files[0], FIELD)
    df = ts.series(poly, stats=("mean", "median", "std", "p90"))
    assert list(df.columns) == ["label", "mean", "median", "std", "p90", "count"]
    assert isinstance(df.index, pd.DatetimeIndex) and df.index.name == "date"
    assert [d.date().isoformat() for d in df.index] == ts.labels == list(df["label"])
    for f, (_, row) in zip(files, df.iterrows()):
        ref, _ = reference(f, poly, NDVI, percentiles=(90,))
        assert row["count"] == ref["count"]
        for k in ("mean", "median", "std", "p90"):
            assert row[k] == pytest.approx(ref[k], rel=1e-12), (row["label"], k)
    # 2009 by hand-checked construction: the same value as layer.statistics of that frame
    assert df["mean"].iloc[0] == ts.layers[0].statistics(poly)["mean"]


def test_one_request_per_frame_and_csv(m, files, tmp_path):
    ts = m.add_time_slider(files, expression=NDVI)
    poly = lonlat_polygon(files[0], FIELD)
    server = ts.layers[0].server
    calls = []
    requests_made = []
    original, original_post = server._request, server._post_json  # every HTTP request of the kernel

    def counting(method, path, *a, **kw):
        requests_made.append((method, path))
        return original(method, path, *a, **kw)

    def counting_post(path, body):
        calls.append(("POST", path))
        return original_post(path, body)

    server._request, server._post_json = counting, counting_post
    try:
        df = ts.series(sg.mapping(poly), progress=False)
    finally:
        del server._request, server._post_json
    assert requests_made == []
    assert sorted(calls) == sorted(("POST", f"statistics/{layer.source_id}") for layer in ts.layers)
    path = tmp_path / "series.csv"
    df.to_csv(path)
    back = pd.read_csv(path, index_col="date", parse_dates=True)
    assert list(back.index) == list(df.index)
    np.testing.assert_allclose(back["mean"].to_numpy(), df["mean"].to_numpy(), rtol=1e-12)
    assert list(back["count"]) == list(df["count"])


def test_nodata_gaps_and_same_date_mosaic(m, files, tmp_path):
    """Frame 2 is a two-file mosaic (2009 with a nodata block, filled from 2009 itself);
    frame 3 is that holed file alone; a frame outside the polygon gives NaN, count 0."""
    hole = str(tmp_path / "m_4709963_se_14_1_20090818.tif")
    copy_with_nodata_block(files[0], hole, slice(100, 141), slice(100, 141))
    poly = lonlat_polygon(files[0], FIELD)
    ts = m.add_time_slider({"2009-08-18": files[0], "2009-08-19": [hole, files[0]], "2009-08-20": hole},
                           expression=NDVI)
    df = ts.series(poly, stats=("mean", "count"))
    full, _ = reference(files[0], poly, NDVI)
    holed, _ = reference(hole, poly, NDVI)
    assert list(df["count"]) == [full["count"], full["count"], full["count"] - 41 * 41]
    assert df["mean"].iloc[1] == pytest.approx(full["mean"], rel=1e-12)
    assert df["mean"].iloc[2] == pytest.approx(holed["mean"], rel=1e-12)
    far = ts.series(sg.box(10, 10, 10.01, 10.01))
    assert far["mean"].isna().all() and (far["count"] == 0).all()


def test_labels_that_are_not_dates(m, files):
    ts = m.add_time_slider({"early": files[0], "late": files[-1]}, expression=NDVI)
    df = ts.series(lonlat_polygon(files[0], FIELD), stats="mean")
    assert df.index.name == "frame" and list(df.index) == ["early", "late"]


def test_bad_stats_and_geometry_before_any_request(m, files):
    ts = m.add_time_slider(files[:3], expression=NDVI)
    server = ts.layers[0].server
    calls = []
    original = server.statistics  # every frame's request goes through it (whatever the transport)
    server.statistics = lambda *a, **kw: calls.append(a) or original(*a, **kw)
    try:
        for stats in (("mean", "average"), ("p101",), ()):
            with pytest.raises(BadRequestError):
                ts.series(lonlat_polygon(files[0], FIELD), stats=stats)
        with pytest.raises(BadRequestError):
            ts.series(object())
        assert calls == []
        with pytest.raises(BadRequestError):  # a point: refused by the first frame's request only
            ts.series(sg.Point(-99.1, 47.0))
        assert len(calls) == 1
    finally:
        del server.statistics  # the class method again


def test_drawn_polygon_plots_the_series_with_a_csv_button(m, files):
    ts = m.add_time_slider(files, expression=NDVI, colormap="RdYlGn", vmin=-0.2, vmax=0.6, zoom_to_layer=True)
    ts.value_label = "NDVI"
    d = ts.add_draw_control(stats=("mean", "median"))
    assert d.control in m.controls
    assert d.control.polyline == {} and d.control.polygon  # polygons and rectangles only
    poly = lonlat_polygon(files[0], FIELD)
    draw(d.control, sg.mapping(poly))
    assert ts.series_control in m.controls
    df = ts.area_series
    assert df is d.last_series
    pd.testing.assert_frame_equal(df, ts.series(poly, stats=("mean", "median")))
    img = Image.open(io.BytesIO(ts.series_image.value))
    assert img.size == (330, 190)
    href = re.search(r"href='data:text/csv;base64,([^']+)'", ts.series_download.value).group(1)
    assert base64.b64decode(href).decode() == df.to_csv()
    assert ts.series_download.layout.display is None
    # a click afterwards shows the pixel's series again, without the CSV button
    from tests.map.helpers import click, pixel_lonlat

    click(m, *pixel_lonlat(files[0], 50, 50))
    assert ts.area_series is None and ts.series_download.layout.display == "none"
    # closing the slider removes its draw control
    ts.close()
    assert d.control not in m.controls


def test_drawing_a_zero_area_polygon_says_so(m, files):
    ts = m.add_time_slider(files[:2], expression=NDVI)
    d = ts.add_draw_control()
    lon, lat = -99.1, 47.03
    draw(d.control, {"type": "Polygon", "coordinates": [[[lon, lat], [lon, lat], [lon, lat], [lon, lat]]]})
    assert d.last_series is None and "empty" in d.last_error


def test_vertex_clicks_of_the_drawing_do_not_replace_the_area_series(m, files):
    """The browser reports each vertex placed with the polygon tool as a map click too;
    the closing click may come after the polygon: the area series stays, and the
    inspector's point from a vertex click is dismissed."""
    from tests.map.helpers import click

    ts = m.add_time_slider(files[:3], expression=NDVI)
    d = ts.add_draw_control()
    poly = lonlat_polygon(files[0], FIELD)
    first = poly.exterior.coords[0]
    click(m, *first)  # the first vertex: a point series for now
    assert ts.shown_series is not None and m.inspector.last is not None
    draw(d.control, sg.mapping(poly))
    assert ts.area_series is not None and m.inspector.last is None
    click(m, first[0] + 1e-7, first[1])  # the closing click, after the polygon was made
    assert ts.area_series is not None and ts.shown_series is None
    d._created_at -= 60  # later, a click at the same place is a click again
    click(m, *first)
    assert ts.shown_series is not None and ts.area_series is None


def test_a_vertex_click_whose_query_ends_after_the_polygon_is_undone(m, files):
    """The kernel may finish showing a vertex click after the polygon arrived: the
    point is then dismissed and the area series shown again."""
    from tests.map.helpers import click

    ts = m.add_time_slider(files[:3], expression=NDVI)
    d = ts.add_draw_control()
    poly = lonlat_polygon(files[0], FIELD)
    first = poly.exterior.coords[0]
    original = m.inspector.click

    def slow_click(lon, lat):  # the polygon arrives while this click is being answered
        out = original(lon, lat)
        m.inspector.click = original
        draw(d.control, sg.mapping(poly))
        return out

    m.inspector.click = slow_click
    click(m, *first)
    assert ts.area_series is not None and ts.shown_series is None
    assert m.inspector.last is None and m.inspector.control not in m.controls


def leaflet_feature(poly) -> dict:
    """A polygon as leaflet-draw's ``layer.toGeoJSON()`` gives it: a Feature, lon/lat
    rounded to 6 decimals (Leaflet's default precision), the layer's options as style."""
    ring = [[round(x, 6), round(y, 6)] for x, y in poly.exterior.coords]
    style = {"stroke": True, "color": "#e6194b", "weight": 2, "opacity": 0.5, "fill": True, "fillOpacity": 0.1,
             "clickable": True}
    return {"type": "Feature", "properties": {"style": style}, "geometry": {"type": "Polygon", "coordinates": [ring]}}


def browser_sends(control, action: str, feature: dict) -> None:
    """The comm message of ipyleaflet's DrawControl view (``draw:created``,
    ``draw:edited``, ``draw:deleted``: one message per shape)."""
    control._handle_leaflet_event(None, {"event": f"draw:{action}", "geo_json": feature}, [])


def expected_series(files, poly):
    """(mean, median, count) of NDVI per file from rasterio + numpy."""
    out = []
    for f in files:
        ref, _ = reference(f, poly, NDVI)
        out.append((ref["mean"], ref["median"], ref["count"]))
    return out


def assert_series(df, expected):
    assert len(df) == len(expected)
    for (mean, median, count), (_, row) in zip(expected, df.iterrows()):
        assert row["count"] == count
        assert row["mean"] == pytest.approx(mean, rel=1e-12) and row["median"] == pytest.approx(median, rel=1e-12)


def test_editing_the_drawn_polygon_recomputes_its_series(m, files):
    ts = m.add_time_slider(files[:4], expression=NDVI, colormap="RdYlGn", vmin=-0.2, vmax=0.6)
    d = ts.add_draw_control(stats=("mean", "median"))
    first = leaflet_feature(lonlat_polygon(files[0], FIELD))
    browser_sends(d.control, "created", first)
    assert_series(ts.area_series, expected_series(files[:4], sg.shape(first["geometry"])))
    before = ts.area_series
    # the edit tool moved two vertices; Save sends the new shape
    edited = leaflet_feature(lonlat_polygon(files[0], [(30.3, 40.2), (60.7, 120.0), (150.0, 110.0), (180.2, 20.9)]))
    browser_sends(d.control, "edited", edited)
    df = ts.area_series
    assert df is d.last_series and df is not before
    expected = expected_series(files[:4], sg.shape(edited["geometry"]))
    assert_series(df, expected)
    assert expected[0][2] < before["count"].iloc[0]  # a smaller field: fewer pixels
    assert f"over the area ({max(e[2] for e in expected)} px)" in ts.series_panel.title.value
    href = re.search(r"href='data:text/csv;base64,([^']+)'", ts.series_download.value).group(1)
    assert base64.b64decode(href).decode() == df.to_csv()
    assert ts.series_control in m.controls


def test_deleting_the_drawn_polygon_clears_the_series_panel(m, files):
    ts = m.add_time_slider(files[:3], expression=NDVI)
    d = ts.add_draw_control()
    shown = leaflet_feature(lonlat_polygon(files[0], FIELD))
    other = leaflet_feature(lonlat_polygon(files[0], [(200, 200), (200, 240), (240, 240), (240, 200)]))
    browser_sends(d.control, "created", other)
    browser_sends(d.control, "created", shown)  # the series shown is this one's
    assert_series(ts.area_series, expected_series(files[:3], sg.shape(shown["geometry"])))
    browser_sends(d.control, "deleted", other)  # another shape deleted: the series stays
    assert ts.area_series is d.last_series is not None and ts.series_control in m.controls
    browser_sends(d.control, "deleted", shown)
    assert ts.area_series is None and d.last_series is None and d.geometry is None
    assert ts.series_control not in m.controls
    assert ts.series_image.value == b"" and ts.series_download.value == ""
    assert ts.series_download.layout.display == "none"
    # a deleted polygon after an edit is recognised by its edited shape
    browser_sends(d.control, "created", other)
    edited = leaflet_feature(lonlat_polygon(files[0], [(200, 200), (200, 250), (250, 250), (250, 200)]))
    browser_sends(d.control, "edited", edited)
    assert ts.area_series["count"].iloc[0] == expected_series(files[:1], sg.shape(edited["geometry"]))[0][2]
    browser_sends(d.control, "deleted", edited)
    assert ts.area_series is None and ts.series_control not in m.controls


def test_clicks_while_a_draw_tool_is_on_do_not_reach_the_inspector(m, files):
    """The browser's watcher reports the tool that is on; clicks made in delete mode (a
    click on a polygon deletes it) or while drawing show no point and no pixel series."""
    from tests.map.helpers import click, pixel_lonlat

    ts = m.add_time_slider(files[:3], expression=NDVI)
    d = ts.add_draw_control()
    assert d.watcher_control in m.controls and d.watcher.mode == ""
    shown = leaflet_feature(lonlat_polygon(files[0], FIELD))
    browser_sends(d.control, "created", shown)
    d._created_at -= 60  # long after the drawing: no vertex clicks pending
    area = ts.area_series
    inside = pixel_lonlat(files[0], 100, 100)  # a click on the polygon in delete mode
    for mode in ("delete", "draw", "edit"):
        d.watcher.set_state({"mode": mode})  # the comm update the browser sends
        click(m, *inside)
        assert m.inspector.last is None and m.inspector.marker is None, mode
        assert ts.shown_series is None and ts.area_series is area, mode
    d.watcher.set_state({"mode": ""})  # Save: the tool is off, the polygon deleted
    browser_sends(d.control, "deleted", shown)
    assert ts.area_series is None and ts.series_control not in m.controls
    click(m, *inside)  # now a click is the inspector's again: the pixel's series
    with rasterio.open(files[0]) as ds:
        b = ds.read(window=((100, 101), (100, 101))).astype("float64")[:, 0, 0]
    ndvi = (b[3] - b[0]) / (b[3] + b[0])
    assert m.inspector.last is not None and ts.shown_series[0][1] == pytest.approx(ndvi, rel=1e-12)
    ts.close()
    assert d.watcher_control not in m.controls and d.control not in m.controls


def test_percentile_names_in_any_spelling_get_their_values(m, files):
    """"p90.0", "p090" are p90 and "p2.50" is p2.5 (they were all-NaN columns): each
    column keeps the name asked, with rasterio + numpy's percentile."""
    ts = m.add_time_slider(files[:3], expression=NDVI)
    poly = lonlat_polygon(files[0], FIELD)
    df = ts.series(poly, stats=("p90.0", "p090", "p90", "p2.50", "p2.5", "mean"))
    assert list(df.columns) == ["label", "p90.0", "p090", "p90", "p2.50", "p2.5", "mean", "count"]
    assert df.notna().all().all()
    for f, (_, row) in zip(files, df.iterrows()):
        ref, _ = reference(f, poly, NDVI, percentiles=(90, 2.5))
        for name, key in (("p90.0", "p90"), ("p090", "p90"), ("p90", "p90"), ("p2.50", "p2.5"), ("p2.5", "p2.5")):
            assert row[name] == pytest.approx(ref[key], rel=1e-12), (row["label"], name)
        assert row["count"] == ref["count"]


def test_series_and_draw_control_of_a_closed_slider_or_map_say_so(files):
    from leafmap_tiles import Map
    from leafmap_tiles.errors import TileServerError

    mp = Map(basemap=None)
    try:
        poly = lonlat_polygon(files[0], FIELD)
        ts = mp.add_time_slider(files[:2], expression=NDVI)
        ts.close()
        n = len(mp.controls)
        with pytest.raises(TileServerError, match="time slider .* was closed"):
            ts.add_draw_control()
        with pytest.raises(TileServerError, match="time slider .* was closed"):
            ts.series(poly)
        assert len(mp.controls) == n and ts.draw is None  # no orphan control
        ts2 = mp.add_time_slider(files[:2], expression=NDVI)
        assert ts2.series(poly, stats="mean")["count"].iloc[0] > 0
    finally:
        mp.close()
    n = len(mp.controls)
    with pytest.raises(TileServerError, match="this Map was closed"):
        ts2.add_draw_control()
    with pytest.raises(TileServerError, match="this Map was closed"):
        ts2.series(poly)
    assert len(mp.controls) == n


def test_percentiles_as_an_array_and_a_single_stat_name(m, files):
    """percentiles=np.array([10, 90]) (it raised numpy's "truth value ambiguous") and
    stats="mean" given to the server's statistics as to slider.series."""
    lyr = m.add_raster(files[0], expression=NDVI)
    poly = lonlat_polygon(files[0], FIELD)
    ref, _ = reference(files[0], poly, NDVI, percentiles=(10, 90))
    for pct in (np.array([10, 90]), np.array([10.0, 90.0]), [np.int64(10), np.float64(90)], (10, 90)):
        got = lyr.statistics(poly, percentiles=pct)
        assert (got["p10"], got["p90"]) == pytest.approx((ref["p10"], ref["p90"]), rel=1e-12)
    assert lyr.statistics(poly, percentiles=0)["p0"] == pytest.approx(ref["min"], rel=1e-12)
    assert lyr.statistics(poly, percentiles=np.float64(90))["p90"] == pytest.approx(ref["p90"], rel=1e-12)
    for bad in (np.array([10, 101]), ["p90"], np.array([np.nan])):
        with pytest.raises(BadRequestError):
            lyr.statistics(poly, percentiles=bad)
    one = m.server.statistics(lyr.source_id, sg.mapping(poly), lyr.style, [], stats="mean")["statistics"][0]
    assert one == {"count": ref["count"], "mean": pytest.approx(ref["mean"], rel=1e-12)}
    from leafmap_tiles.render import zonal

    assert zonal.check_stats("mean") == ("mean",) and zonal.check_stats(["mean", "std"]) == ("mean", "std")
    with pytest.raises(BadRequestError):
        zonal.check_stats("average")


def test_a_collection_layer_of_band_2_uses_band_2s_scale_and_offset(m):
    """cog_scale.tif's bands carry different scale/offset tags (0.0001/1000, 0.001/2000)
    and the collection's index holds band 1's only: given to the layer, band 1's were
    applied to band 2 (mean 1000.3 for 2003.4; a re-check of issue 16).  A collection
    layer and a time slider of the collection now give the file layer's statistics."""
    import rasterio.warp

    from leafmap_tiles import collections
    from tests.conftest import data

    path = data("cog_scale.tif")
    col = collections.from_items([collections.local_item(path, datetime="2021-01-01", asset="a")])
    with rasterio.open(path) as ds:
        w, s, e, n = rasterio.warp.transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
    box = sg.box(w + (e - w) / 3, s + (n - s) / 3, w + 2 * (e - w) / 3, s + 2 * (n - s) / 3)
    want = m.add_raster(path, indexes=[2]).statistics(box)
    assert 1999 < want["mean"] < 2014  # band 2 in physical units
    got = m.add_raster(col[0], indexes=[2]).statistics(box)
    assert got["count"] == want["count"] and got["mean"] == pytest.approx(want["mean"], rel=1e-12)
    sl = m.add_time_slider(col, indexes=[2])
    row = sl.series(box, stats=("mean",), progress=False).iloc[0]
    assert row["mean"] == pytest.approx(want["mean"], rel=1e-12)

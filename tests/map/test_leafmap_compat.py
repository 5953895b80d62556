"""What leafmap users paste: basemaps by name, controls, add_cog_layer, split_map,
linked_maps, add_legend, legends of paletted rasters, restyle, add_time_slider on a
folder or glob.  Expected values come from xyzservices, rasterio and our own
add_raster of the same style (the reference for restyle)."""

from __future__ import annotations


import ipyleaflet
import morecantile
import numpy as np
import pytest
import rasterio

from tests.conftest import DATA, data

TMS = morecantile.tms.get("WebMercatorQuad")


def _centre_tile(layer, z):
    w, s, e, n = layer.info["bounds"]
    return TMS.tile((w + e) / 2, (s + n) / 2, z)


def _png(layer, z=None):
    z = z if z is not None else min(int(layer.info["maxzoom"]), 12)
    t = _centre_tile(layer, z)
    return layer.server.tile(layer.source_id, t.z, t.x, t.y, layer.style)


def test_basemap_names_are_xyzservices_names():
    import xyzservices

    from leafmap_tiles import Map
    from leafmap_tiles.errors import StyleError

    mm = Map(basemap="OpenTopoMap")
    try:
        base = mm.layers[0]
        assert base.base and base.url == xyzservices.providers.OpenTopoMap.build_url()
        lyr = mm.add_basemap("Esri.WorldImagery")
        assert lyr.url == xyzservices.providers.Esri.WorldImagery.build_url() and mm.layers[-1] is lyr
        assert mm.add_basemap("HYBRID").url == "https://mt1.google.com/vt/lyrs=y&x={x}&y={y}&z={z}"
        with pytest.raises(StyleError, match="did you mean 'OpenTopoMap'"):
            mm.add_basemap("OpenTopMap")
        with pytest.raises(StyleError, match="needs an API key"):
            mm.add_basemap("CartoDB.Positron")  # xyzservices 2026 marks CARTO as keyed
        mm.set_basemap("Esri.WorldGrayCanvas")
        assert mm.layers[0].base and mm.layers[0].name == "Esri.WorldGrayCanvas"
        assert sum(1 for l in mm.layers if l.base) == 1
    finally:
        mm.close()
    with pytest.raises(StyleError):
        Map(basemap="NoSuchBasemap")


def test_controls_and_basemap_picker():
    from leafmap_tiles import Map

    mm = Map(scale_control=True, basemap_control=True, height=500)
    try:
        kinds = [type(c) for c in mm.controls]
        assert ipyleaflet.FullScreenControl in kinds and ipyleaflet.ScaleControl in kinds
        assert mm.layout.height == "500px"
        mm.basemap_picker.dropdown.value = "OpenTopoMap"
        assert mm.layers[0].name == "OpenTopoMap" and mm.layers[0].base
        mm.basemap_picker.dropdown.value = "(none)"
        assert not any(getattr(l, "base", False) for l in mm.layers)
    finally:
        mm.close()
    plain = Map(fullscreen_control=False)
    assert ipyleaflet.FullScreenControl not in [type(c) for c in plain.controls]
    plain.close()


def test_add_cog_layer_takes_leafmap_arguments(m):
    cog = m.add_cog_layer(data("cog.tif"), name="landsat", rescale="1000,9000", colormap_name="viridis")
    ref = m.add_raster(data("cog.tif"), vmin=1000, vmax=9000, colormap="viridis")
    assert cog.name == "landsat" and cog.stretch == {"vmin": [1000.0], "vmax": [9000.0]}
    assert _png(cog) == _png(ref)
    ndvi = m.add_cog_layer(data("naip/m_4709963_se_14_1_20200831.tif"), expression="(b4-b1)/(b4+b1)",
                           rescale="-0.2,0.9", colormap_name="rdylgn")  # TiTiler's lower-case name
    assert ndvi.style["colormap"] == "RdYlGn" and ndvi.stretch == {"vmin": [-0.2], "vmax": [0.9]}


def test_restyle_changes_tiles_in_place_and_redraws_the_colorbar(m):
    lyr = m.add_raster(data("cog.tif"), colormap="gray")
    cb = m.add_colorbar(lyr, label="DN")
    old_id, old_url, old_png = lyr.source_id, lyr.url, cb.png
    n_layers = len(m.layers)
    lyr.restyle(colormap="magma", vmin=1000, vmax=5000)
    ref = m.create_raster_layer(data("cog.tif"), colormap="magma", vmin=1000, vmax=5000)
    try:
        assert len(m.layers) == n_layers and m.layers[-1] is lyr  # the same layer, no new one
        assert lyr.url != old_url and lyr.style == ref.style
        assert _png(lyr) == _png(ref)
        assert not m.server.is_registered(old_id)  # the old registration is released
        assert cb.tick_labels == ["1000", "1800", "2600", "3400", "4200", "5000"]
        assert cb.widget.value == cb.png != old_png
    finally:
        ref.release()
    from leafmap_tiles.errors import StyleError

    url = lyr.url
    with pytest.raises(StyleError):
        lyr.restyle(vmin=5, vmax=1)
    with pytest.raises(StyleError):
        lyr.restyle(colormap="not-a-colormap")
    assert lyr.url == url and lyr.style["colormap"] == "magma"
    lyr.restyle(indexes=1, stretch="minmax")  # a new band choice drops the old range
    st = lyr.band_statistics[0]
    assert lyr.stretch == {"vmin": [st["min"]], "vmax": [st["max"]]}


def test_style_editor_in_the_layer_panel(m):
    lyr = m.add_raster(data("cog.tif"), colormap="gray")
    ed = m.layer_control.editor(lyr)
    ed.gear.value = True
    assert ed.box.layout.display == "flex"
    ed.colormap.value = "viridis"
    ed.vmin.value, ed.vmax.value = 2000.0, 8000.0
    ed.apply.click()
    assert lyr.style["colormap"] == "viridis" and lyr.stretch == {"vmin": [2000.0], "vmax": [8000.0]}
    ed.vmin.value = 9000.0  # vmin > vmax: message, layer unchanged
    ed.apply.click()
    assert "vmin" in ed.message.value and lyr.stretch == {"vmin": [2000.0], "vmax": [8000.0]}
    m.center, m.zoom = (0, 0), 2
    ed.zoom.click()
    w, s, e, n = lyr.info["bounds"]
    assert s < m.center[0] < n and w < m.center[1] < e and m.zoom > 5
    ed.remove.click()
    assert lyr not in m.layers and not m.server.is_registered(lyr.source_id)


def test_paletted_raster_gets_a_legend_of_its_classes(m):
    lyr = m.add_raster(data("cog_cmap.tif"))
    with rasterio.open(data("cog_cmap.tif")) as ds:
        table = ds.colormap(1)
        f = max(1.0, max(ds.width, ds.height) / 1024)
        arr = ds.read(1, out_shape=(int(ds.height / f), int(ds.width / f)), masked=True)
        nodata = ds.nodata
    values = [int(v) for v in np.unique(arr.compressed()) if nodata is None or v != nodata]
    cb = m.add_colorbar(lyr)
    assert [name for name, _ in cb.entries] == [str(v) for v in values]
    assert [tuple(round(c * 255) for c in rgba) for _, rgba in cb.entries] == [table[v] for v in values]
    names = {values[0]: "first class", values[1]: "second class"}
    named = m.add_colorbar(lyr, class_names=names)
    assert [n for n, _ in named.entries][:2] == ["first class", "second class"]
    # colormap= and class_names= given for a paletted raster: used, not refused
    given = m.add_colorbar(lyr, colormap={values[0]: "red", values[1]: "blue"}, class_names=names)
    assert given.entries == [("first class", (1.0, 0.0, 0.0, 1.0)), ("second class", (0.0, 0.0, 1.0, 1.0))]
    lyr.class_names = names
    leg = m.add_legend(layer=lyr, title="Classes")
    assert leg.entries[0][0] == "first class"


def test_add_legend_from_dict_and_lists(m):
    leg = m.add_legend(title="Land cover", legend_dict={"Water": "466b9f", "Forest": "#1c5f2c"})
    assert leg.entries == [("Water", (0x46 / 255, 0x6b / 255, 0x9f / 255, 1.0)),
                           ("Forest", (0x1c / 255, 0x5f / 255, 0x2c / 255, 1.0))]
    assert leg.control in m.controls
    leg2 = m.add_legend(labels=["a", "b"], colors=[(255, 0, 0), (0, 0, 255)])
    assert leg2.entries == [("a", (1.0, 0.0, 0.0, 1.0)), ("b", (0.0, 0.0, 1.0, 1.0))]
    from leafmap_tiles.errors import StyleError

    with pytest.raises(StyleError):
        m.add_legend()


def test_inspector_names_classes(m):
    lyr = m.add_raster(data("cog_cmap.tif"))
    w, s, e, n = lyr.info["bounds"]
    lon, lat = (w + e) / 2, (s + n) / 2
    value = lyr.point(lon, lat)["values"][0]
    lyr.class_names = {value: "Forest"}
    m.inspector.click(lon, lat)
    assert f"b1: {value} (Forest)" in m.inspector.html.value


def test_terracotta_categories_become_class_names(m, tmp_path):
    from leafmap_tiles import store

    ks = store.open(str(tmp_path / "tc.sqlite"))
    ks.create(["name"])
    md = ks.compute_metadata(data("nlcd.tif"), extra_metadata={"categories": {"water": 1, "developed": 2}})
    ks.insert(["nlcd"], data("nlcd.tif"), metadata=md)
    lyr = m.add_dataset(ks, name="nlcd", colormap={1: "#466b9f", 2: "#aa0000"})
    assert lyr.class_names == {1: "water", 2: "developed"}
    cb = m.add_colorbar(lyr)
    assert [n for n, _ in cb.entries] == ["water", "developed"]


def test_split_map_of_two_rasters_and_two_slider_dates(m):
    left, right = data("naip/m_4709963_se_14_1_20090818.tif"), data("naip/m_4709963_se_14_1_20200831.tif")
    sm = m.split_map(left, right, left_args={"indexes": [4, 1, 2]}, right_args={"indexes": [4, 1, 2]},
                     left_label="2009", right_label="2020")
    assert isinstance(sm.control, ipyleaflet.SplitMapControl) and sm.control in m.controls
    assert sm.control.left_layer is sm.left and sm.control.right_layer is sm.right
    ref = m.create_raster_layer(left, indexes=[4, 1, 2])
    try:
        assert _png(sm.left, 16) == _png(ref, 16)
    finally:
        ref.release()
    assert [c.widget.value for c in sm.labels] == [
        "<b style='padding:2px 6px;background:rgba(255,255,255,.85)'>2009</b>",
        "<b style='padding:2px 6px;background:rgba(255,255,255,.85)'>2020</b>"]
    ids = [sm.left.source_id, sm.right.source_id]
    sm.close()
    assert sm.control not in m.controls and not any(m.server.is_registered(i) for i in ids)
    ts = m.add_time_slider(str(DATA / "naip"), indexes=[4, 1, 2])
    view = (m.zoom, tuple(m.center))
    sm2 = m.split_map("2009-08-18", "2020-08-31")
    assert (m.zoom, tuple(m.center)) == view  # the dates are in view already
    # each side is a copy of its frame with a registration of its own: same pixels, and
    # it keeps working after the slider is closed (which releases the frames' sources)
    frame_pngs = [_png(ts.layers[0], 16), _png(ts.layers[-1], 16)]
    assert [_png(sm2.left, 16), _png(sm2.right, 16)] == frame_pngs
    assert sm2.left.source_id != ts.layers[0].source_id
    frame_ids = [ts.layers[0].source_id, ts.layers[-1].source_id]
    ts.close()
    assert not any(m.server.is_registered(i) for i in frame_ids)
    assert [_png(sm2.left, 16), _png(sm2.right, 16)] == frame_pngs
    side_ids = [sm2.left.source_id, sm2.right.source_id]
    sm2.close()
    assert not any(m.server.is_registered(i) for i in side_ids)
    sm3 = m.split_map("OpenTopoMap", left)  # a basemap name on one side
    assert sm3.left.name == "OpenTopoMap"


def test_linked_maps_share_the_view():
    from leafmap_tiles import linked_maps

    grid = linked_maps(rows=1, cols=2, layers=["OpenTopoMap", data("cog.tif")], labels=["topo", "landsat"])
    try:
        a, b = grid.maps
        assert a.layers[0].name == "OpenTopoMap" and b.layers[-1].name == "cog"
        assert a.center == b.center and a.zoom == b.zoom and a.zoom > 5
        assert grid[0, 1] is b
    finally:
        grid.close_maps()
    assert b._closed


def test_time_slider_on_a_folder_or_glob(m):
    from leafmap_tiles.errors import SourceNotFoundError

    ts = m.add_time_slider(str(DATA / "naip") + "/", indexes=[4, 1, 2])
    assert ts.labels == sorted(ts.labels) and len(ts.labels) == 10 and ts.labels[0] == "2009-08-18"
    ts2 = m.add_time_slider(str(DATA / "naip" / "*201[89]*.tif"), expression="(b4-b1)/(b4+b1)")
    assert ts2.labels == ["2018-07-16", "2019-09-04"]
    with pytest.raises(SourceNotFoundError):
        m.add_time_slider(str(DATA / "naip" / "*1999*.tif"))

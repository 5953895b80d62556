"""Colorbars in physical units, categorical legends, and the inspector's scale/offset."""

from __future__ import annotations

import io

import numpy as np
import pytest
import rasterio
from PIL import Image

from tests.conftest import data
from tests.map.helpers import click, naip_files, pixel_lonlat

TERRASCOPE_TICKS = ["-0.08", "0.12", "0.32", "0.52", "0.72", "0.92"]


def terrascope_like(path, tags: bool) -> np.ndarray:
    """NAIP 2020 NDVI encoded as Terrascope does (uint8 DN = (NDVI + 0.08) / 0.004,
    0..250, nodata 255), with a nodata block; scale/offset written as tags if asked."""
    with rasterio.open(naip_files()[-1]) as src:
        b1, b4 = src.read([1, 4]).astype("float64")
        prof = src.profile.copy()
    ndvi = (b4 - b1) / (b4 + b1)
    dn = np.clip(np.round((ndvi + 0.08) / 0.004), 0, 250).astype("uint8")
    dn[:20, :20] = 255
    prof.update(count=1, dtype="uint8", nodata=255, photometric="MINISBLACK")
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(dn, 1)
        if tags:
            dst.scales = (0.004,)
            dst.offsets = (-0.08,)
    return dn


def test_ticks_in_physical_units_from_file_tags(m, tmp_path):
    path = str(tmp_path / "ndvi_dn.tif")
    terrascope_like(path, tags=True)
    layer = m.add_raster(path, colormap="RdYlGn", vmin=0, vmax=250)
    assert layer.info["scales"] == [0.004] and layer.info["offsets"] == [-0.08]
    cb = m.add_colorbar(layer, label="NDVI")
    assert cb.tick_labels == TERRASCOPE_TICKS
    assert cb.ticks == pytest.approx([-0.08, 0.12, 0.32, 0.52, 0.72, 0.92])
    assert cb.control in m.controls and cb.widget.value == cb.png
    assert Image.open(io.BytesIO(cb.png)).format == "PNG"


def test_ticks_in_physical_units_from_stac_scale_offset(m, tmp_path):
    path = str(tmp_path / "ndvi_dn_untagged.tif")
    terrascope_like(path, tags=False)
    layer = m.add_raster(path, colormap="RdYlGn", vmin=0, vmax=250)
    assert layer.info["scales"] == [1.0]
    plain = m.add_colorbar(layer)
    assert plain.tick_labels == ["0", "50", "100", "150", "200", "250"]
    layer.scale, layer.offset = 0.004, -0.08  # as a STAC item's raster:scale / raster:offset
    cb = m.add_colorbar(layer)
    assert cb.tick_labels == TERRASCOPE_TICKS
    # explicit arguments, no layer
    cb2 = m.add_colorbar(colormap="RdYlGn", vmin=0, vmax=250, scale=0.004, offset=-0.08, orientation="vertical")
    assert cb2.tick_labels == TERRASCOPE_TICKS


def test_colorbar_colours_match_the_layer_colormap(m, tmp_path):
    import matplotlib

    path = str(tmp_path / "ndvi_dn.tif")
    terrascope_like(path, tags=True)
    layer = m.add_raster(path, colormap="RdYlGn", vmin=0, vmax=250)
    cb = m.add_colorbar(layer)
    img = np.asarray(Image.open(io.BytesIO(cb.png)).convert("RGB")).astype(int)
    # the bar's middle row: its left end is RdYlGn(0), its right end RdYlGn(1)
    cmap = matplotlib.colormaps["RdYlGn"]
    reds = np.abs(img - np.array(cmap(0.0)[:3]) * 255).sum(axis=2) < 12
    greens = np.abs(img - np.array(cmap(1.0)[:3]) * 255).sum(axis=2) < 12
    assert reds.any() and greens.any()
    assert np.nonzero(reds)[1].mean() < np.nonzero(greens)[1].mean()


def test_inspector_applies_scale_offset_and_shows_nodata(m, tmp_path):
    path = str(tmp_path / "ndvi_dn.tif")
    dn = terrascope_like(path, tags=True)
    layer = m.add_raster(path, colormap="RdYlGn", vmin=0, vmax=250)
    lon, lat = pixel_lonlat(path, 100, 150)
    click(m, lon, lat)
    row = m.inspector.last["layers"][0]
    assert row["name"] == layer.name and row["inside"]
    assert row["values"] == [("b1", pytest.approx(int(dn[100, 150]) * 0.004 - 0.08))]
    lon, lat = pixel_lonlat(path, 5, 5)
    click(m, lon, lat)
    assert m.inspector.last["layers"][0]["values"] == [("b1", None)]
    assert "b1: nodata" in m.inspector.html.value and "255" not in m.inspector.html.value


def test_time_slider_keeps_one_colorbar(m):
    from tests.map.helpers import NDVI

    ts = m.add_time_slider(naip_files()[:3], expression=NDVI, colormap="RdYlGn", vmin=-0.2, vmax=0.6)
    cb = m.add_colorbar(ts, label="NDVI")
    assert cb.tick_labels == ["-0.2", "-0.04", "0.12", "0.28", "0.44", "0.6"]
    before = list(m.controls)
    ts.slider.value = 2
    assert list(m.controls) == before


def test_categorical_legend_with_class_names(m):
    layer = m.add_raster(data("nlcd.tif"), colormap={11: "#476ba1", 21: "#ddc9c9", 41: "#68ab63"})
    cb = m.add_colorbar(layer, class_names={11: "Open water", 21: "Developed, open space", 41: "Deciduous forest"})
    assert [name for name, _ in cb.entries] == ["Open water", "Developed, open space", "Deciduous forest"]
    assert cb.tick_labels == ["Open water", "Developed, open space", "Deciduous forest"]
    assert cb.entries[0][1] == pytest.approx((0x47 / 255, 0x6B / 255, 0xA1 / 255, 1.0))


def test_colorbar_refuses_rgb_and_bad_ranges(m):
    rgb = m.add_raster(data("bahamas_rgb.tif"))
    with pytest.raises(ValueError):
        m.add_colorbar(rgb)
    with pytest.raises(ValueError):
        m.add_colorbar(colormap="viridis", vmin=1, vmax=1)
    with pytest.raises(ValueError):
        m.add_colorbar(colormap="not-a-colormap", vmin=0, vmax=1)

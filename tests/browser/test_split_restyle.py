"""leafmap-style code in JupyterLab + Chromium: a split map shows each side's raster
on its side of the divider; restyling a layer from the layer panel's style editor
(gear, vmax, Apply) redraws the same layer with the new style's tiles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .pagetools import PRELUDE, decode_png

DATA = Path(__file__).resolve().parents[1] / "data"
LEFT = DATA / "landsat_annual" / "1985.tif"
RIGHT = DATA / "landsat_annual" / "1990.tif"  # same grid as 1985
SINGLE = DATA / "cog.tif"

SPLIT_CELL = f'''\
m = Map(basemap=None)
sm = m.split_map({str(LEFT)!r}, {str(RIGHT)!r}, left_args={{"indexes": [1, 2, 3], "vmin": 0, "vmax": 255}},
                 right_args={{"indexes": [3, 2, 1], "vmin": 0, "vmax": 255}}, left_label="1985", right_label="1990")
left = m.create_raster_layer({str(LEFT)!r})  # never shown: only to know the two views
m.zoom_to_bounds(left.info["bounds"], max_zoom=int(left.info.get("maxzoom", 18)))
left.release()
info(m, sm.left, right=sm.right.source_id)
m
'''

RESTYLE_CELL = f'''\
m2 = Map(basemap=None)
lyr = m2.add_raster({str(SINGLE)!r}, colormap="gray", vmin=0, vmax=20000)
m2.layer_control.expanded = True
info(m2, lyr)
m2
'''


NAIP = DATA / "naip" / "m_4709963_se_14_1_20200831.tif"
STAC_CELL = f'''\
import tempfile, rasterio
from pathlib import Path
tmp = Path(tempfile.mkdtemp())
with rasterio.open({str(NAIP)!r}) as src:
    prof = dict(driver="GTiff", count=1, crs=src.crs, transform=src.transform, width=src.width,
                height=src.height, dtype="uint8", nodata=0)
    for name, b in (("red", 1), ("nir", 4)):
        with rasterio.open(tmp / f"{{name}}.tif", "w", **prof) as d:
            d.write(src.read(b), 1)
item = {{"type": "Feature", "stac_version": "1.0.0", "id": "naip", "bbox": None, "geometry": None,
        "properties": {{"datetime": "2020-08-31T00:00:00Z"}}, "links": [],
        "assets": {{k: {{"href": str(tmp / f"{{k}}.tif"), "roles": ["data"]}} for k in ("red", "nir")}}}}
m3 = Map(basemap="OpenTopoMap", scale_control=True, basemap_control=True)
ndvi = m3.add_raster(item, assets=["red", "nir"], expression="(nir-red)/(nir+red)", colormap="RdYlGn",
                     vmin=-0.2, vmax=0.9, layer_name="NDVI")
m3.add_colorbar(ndvi, label="NDVI")
info(m3, ndvi)
m3
'''


@pytest.fixture(scope="module")
def page(lab_for, open_notebook):
    lab = lab_for("local")
    name = lab.write_notebook("split_restyle.ipynb", [PRELUDE, SPLIT_CELL, RESTYLE_CELL, STAC_CELL])
    return open_notebook(lab, name)


def _tile_at(nb, cell: int, source_id: str, fx: float, fy: float = 0.5, timeout_ms: int = 60_000) -> dict:
    """Geometry (relative to the map) and URL of the loaded tile of ``source_id``
    under the point at (``fx``, ``fy``) of the map's width/height."""
    return nb.page.wait_for_function(
        """([i, sid, fx, fy]) => {
            const cont = document.querySelectorAll('.jp-Notebook .jp-Cell')[i].querySelector('.leaflet-container');
            if (!cont) return null;
            const cr = cont.getBoundingClientRect();
            const px = cr.left + cr.width * fx, py = cr.top + cr.height * fy;
            const imgs = [...cont.querySelectorAll('img.leaflet-tile')].filter(im => im.src.includes('/tiles/' + sid + '/'));
            const hit = imgs.find(im => { const r = im.getBoundingClientRect();
                return r.left <= px && px < r.right && r.top <= py && py < r.bottom
                       && im.complete && im.naturalWidth > 0 && im.classList.contains('leaflet-tile-loaded')
                       && getComputedStyle(im).opacity === '1'; });
            if (!hit) return null;
            const r = hit.getBoundingClientRect();
            return {src: hit.src, left: r.left - cr.left, top: r.top - cr.top, width: r.width, height: r.height,
                    natural: [hit.naturalWidth, hit.naturalHeight], px: cr.width * fx, py: cr.height * fy};
        }""", arg=[cell, source_id, fx, fy], timeout=timeout_ms, polling=100).json_value()


def _patch_diff(shot, tile, expected, half=3):
    """Mean |RGB difference| between the screenshot around the tile's point and the
    tile PNG's pixels displayed there (best of +-1 px placement)."""
    sx, sy = tile["natural"][0] / tile["width"], tile["natural"][1] / tile["height"]
    cx, cy = int(tile["px"]), int(tile["py"])
    best = None
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            got, want = [], []
            for py in range(cy - half, cy + half + 1):
                for px in range(cx - half, cx + half + 1):
                    tx, ty = int((px + dx - tile["left"]) * sx), int((py + dy - tile["top"]) * sy)
                    if 0 <= tx < expected.shape[1] and 0 <= ty < expected.shape[0]:
                        got.append(shot[py, px, :3])
                        want.append(expected[ty, tx, :3])
            d = float(np.abs(np.array(got, float) - np.array(want, float)).mean())
            best = d if best is None else min(best, d)
    return best


def test_split_map_shows_each_side(page):
    nb, cell = page, 1
    info = nb.map_info(cell)
    left_sid, right_sid = info["source_id"], info["right"]
    lt = _tile_at(nb, cell, left_sid, 0.42)
    rt = _tile_at(nb, cell, right_sid, 0.58)
    shot, path = nb.screenshot_map(cell, "split-map")
    left_png, right_png = decode_png(nb.fetch(lt["src"])), decode_png(nb.fetch(rt["src"]))
    # each side shows its own raster ...
    assert _patch_diff(shot, lt, left_png) <= 6.0, path
    assert _patch_diff(shot, rt, right_png) <= 6.0, path
    # ... and not the other one's: the other raster's tile at the same place differs
    other = decode_png(nb.fetch(lt["src"].replace(f"/tiles/{left_sid}/", f"/tiles/{right_sid}/")))
    assert _patch_diff(shot, lt, other) > 12.0, path
    labels = nb.map_locator(cell).locator(".leaflet-control b")
    assert {labels.nth(i).inner_text() for i in range(labels.count())} >= {"1985", "1990"}
    print(f"split map screenshot: {path}")


def test_style_editor_restyles_the_layer_in_place(page):
    nb, cell = page, 2
    info = nb.map_info(cell)
    before = nb.check_centre(cell, info, "restyle-before")
    panel = nb.map_locator(cell).locator(".leaflet-top.leaflet-right")
    panel.locator("button[title='Style']").first.click()
    vmax = panel.locator(".widget-text:has(label:text-is('vmax')) input")
    vmax.fill("8000")
    vmax.press("Enter")
    panel.locator(".widget-dropdown select").first.select_option("magma")
    panel.locator("button:has-text('Apply')").click()
    new_sid = nb.page.wait_for_function(
        """([i, old]) => {
            const cont = document.querySelectorAll('.jp-Notebook .jp-Cell')[i].querySelector('.leaflet-container');
            const im = [...cont.querySelectorAll('img.leaflet-tile')].find(im => !im.src.includes('/tiles/' + old + '/'));
            return im ? im.src.split('/tiles/')[1].split('/')[0] : null;
        }""", arg=[cell, info["source_id"]], timeout=60_000, polling=100).json_value()
    after = nb.check_centre(cell, dict(info, source_id=new_sid), "restyle-after")
    assert "colormap=magma" in after["tile"]["src"] and "vmax=8000" in after["tile"]["src"]
    # grey became a magma colour: no longer r == g == b
    r, g, b = after["centre_rgb"]
    assert max(abs(r - g), abs(g - b)) > 20 and before["centre_rgb"] != after["centre_rgb"]
    n_layers = nb.map_locator(cell).locator(".leaflet-layer").count()
    assert n_layers == 1  # the same layer, not a second one
    print(f"restyle screenshots: {before['screenshot']} -> {after['screenshot']}")


def test_ndvi_of_two_assets_in_the_browser(page):
    """A STAC item's red and NIR assets (separate files) drawn as NDVI: the map's centre
    shows the server's tile of that layer (basemap blocked: only 127.0.0.1 is reachable)."""
    nb, cell = page, 3
    info = nb.map_info(cell)
    out = nb.check_centre(cell, info, "stac-ndvi")
    assert "expression=%28b2-b1%29%2F%28b2%2Bb1%29" in out["tile"]["src"]
    kinds = nb.map_locator(cell).locator(".leaflet-control-scale, .leaflet-control-fullscreen, select")
    assert kinds.count() >= 3  # scale bar, fullscreen button, basemap picker
    print(f"NDVI screenshot: {out['screenshot']}")

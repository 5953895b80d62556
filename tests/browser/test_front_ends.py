"""Tiles in every front end with no set-up (issue 14), in Chromium: JupyterLab whose
browser cannot reach the kernel's loopback ports (only the Jupyter server's), Jupyter
Notebook 7 (same), a standalone Voila server (no jupyter-server extension: the comm
bridge), Voila as an extension of a Jupyter server (the proxy path), and JupyterLab
without our extension (tiles only over the comm bridge).

In each, with nothing set by the user: the route the kernel found is the expected one,
the tiles of ``add_raster`` are drawn (the pixels at the map's centre are those of the
tile the server returns there), clicking the time slider shows the next frame, and a
click on the map makes the inspector show the pixel's values (checked against rasterio).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .pagetools import PRELUDE, SCENARIOS
from .test_time_slider import _click_slider_at

DATA = Path(__file__).resolve().parents[1] / "data"
RGB = DATA / "bahamas_rgb.tif"
FRAMES = [DATA / "landsat_annual" / "1985.tif", DATA / "landsat_annual" / "1990.tif"]

SLIDER_CELL = f'''\
from pathlib import Path
m = Map(basemap=None)
frames = {{Path(p).stem: m.create_raster_layer(p, indexes=[1, 2, 3], vmin=0, vmax=255)
          for p in {[str(p) for p in FRAMES]!r}}}
first = frames["1985"]
m.zoom_to_bounds(first.info["bounds"], max_zoom=int(first.info.get("maxzoom", 18)))
slider = m.add_time_slider(frames)
info(m, first, frames=[lyr.source_id for lyr in frames.values()])
m
'''
CELLS = [PRELUDE, f"show({str(RGB)!r})", SLIDER_CELL]
RASTER_CELL, SLIDER = 1, 2
FRONT_ENDS = ["remote", "notebook7", "voila", "voila-ext", "comm"]


@pytest.fixture(scope="module", params=FRONT_ENDS)
def page(request, lab_for, open_notebook):
    scenario = request.param
    if SCENARIOS[scenario].get("view") == "voila" or SCENARIOS[scenario].get("app") == "voila":
        pytest.importorskip("voila")
    if SCENARIOS[scenario].get("app") == "notebook":
        pytest.importorskip("notebook")
    lab = lab_for(scenario)
    name = lab.write_notebook(f"front_end_{scenario}.ipynb", CELLS)
    nb = open_notebook(lab, name)
    nb.scenario = scenario
    return nb


def _expected_prefix(nb, info) -> str:
    if SCENARIOS[nb.scenario]["route"] == "proxy":
        return f"{nb.lab.base_url}leafmap-tiles-proxy/{info['port']}/"
    return f"http://127.0.0.1:{info['port']}/"


def test_route_found_by_the_kernel(page):
    info = page.map_info(RASTER_CELL)
    assert info["route"] == SCENARIOS[page.scenario]["route"], info
    assert info["url"].startswith(_expected_prefix(page, info)), info["url"]


def test_add_raster_tiles_are_drawn(page):
    info = page.map_info(RASTER_CELL)
    result = page.check_centre(RASTER_CELL, info, f"{page.scenario}-add_raster")
    print(f"{page.scenario}: centre {result['centre_rgb']} mean |diff| {result['diff']:.2f} "
          f"tile {result['tile']['src']} shown as {result['tile']['shown'][:60]} screenshot {result['screenshot']}")
    if SCENARIOS[page.scenario]["route"] == "comm":
        # the image holds the bytes the comm bridge fetched in the kernel
        assert result["tile"]["shown"].startswith("blob:"), result["tile"]
    else:
        assert result["tile"]["shown"] == result["tile"]["src"]


def test_time_slider_changes_frames(page):
    info = page.map_info(SLIDER)
    sid0, sid1 = info["frames"]
    before = page.check_centre(SLIDER, dict(info, source_id=sid0), f"{page.scenario}-slider-0", not_source=sid1)
    _click_slider_at(page, SLIDER, 1.0)
    after = page.check_centre(SLIDER, dict(info, source_id=sid1), f"{page.scenario}-slider-1", not_source=sid0)
    print(f"{page.scenario} slider: centre {before['centre_rgb']} -> {after['centre_rgb']}")


def _expected_values(path: Path, lon: float, lat: float) -> list[list[int]]:
    """Bands 1-3 of ``path`` at every pixel that a point shown as (lat, lon) rounded
    to 5 decimals may be in."""
    import rasterio

    out = []
    with rasterio.open(path) as ds:
        for dx in (-5e-6, 5e-6):
            for dy in (-5e-6, 5e-6):
                out.append([int(v) for v in next(ds.sample([(lon + dx, lat + dy)], indexes=[1, 2, 3]))])
    return out


def test_inspector_answers_a_click(page):
    info = page.map_info(SLIDER)
    loc = page.map_locator(SLIDER)
    loc.scroll_into_view_if_needed()
    box = loc.bounding_box()
    # a bit off the centre (the centre is where the slider tests look)
    page.page.mouse.click(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.45)
    panel = loc.locator(".leaflet-control", has_text="b1:")
    panel.first.wait_for(state="visible", timeout=30_000)
    text = panel.first.inner_text()
    loc.screenshot(path=str(page.artefacts / f"{page.scenario}-inspector.png"))
    lat, lon = (float(v) for v in re.search(r"(?:lat\s*)?(-?\d+\.\d{3,}),\s*(?:lon\s*)?(-?\d+\.\d{3,})", text).groups())
    shown = [int(v) for v in re.findall(r"b[123]: (\d+)", text)]
    # the slider shows the last frame (test_time_slider_changes_frames) or the first one
    candidates = [v for p in FRAMES for v in _expected_values(p, lon, lat)]
    assert shown[:3] in candidates, (text, candidates)
    assert abs(lat - info["center"][0]) < 0.5 and abs(lon - info["center"][1]) < 0.5, (lat, lon, info["center"])
    print(f"{page.scenario} inspector at {lat}, {lon}: {text!r}")


def test_nothing_reached_the_tile_server_port_directly(page):
    """The browser could not reach the kernel's ports: no tile was lost to that (a
    blocked request would mean a tile URL the browser cannot use)."""
    for cell in (RASTER_CELL, SLIDER):
        info = page.map_info(cell)
        blocked = [u for u in page.blocked if f":{info['port']}/" in u]
        assert not blocked, blocked[:5]
    failed = [f for f in page.failed if "/tiles/" in f]
    assert not failed, failed[:5]

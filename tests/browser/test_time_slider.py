"""A time slider moved by clicking in the browser shows the next frame's pixels."""

from __future__ import annotations

from pathlib import Path

import pytest

from .pagetools import PRELUDE

DATA = Path(__file__).resolve().parents[1] / "data" / "landsat_annual"
FRAMES = [DATA / "1985.tif", DATA / "1990.tif"]  # annual Landsat composites, same grid

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


@pytest.fixture(scope="module")
def slider_page(lab_for, open_notebook):
    from leafmap_tiles.map import Map

    if not hasattr(Map, "add_time_slider"):
        pytest.skip("Map.add_time_slider is not in this version of the package yet (issue 6)")
    lab = lab_for("local")
    name = lab.write_notebook("time_slider.ipynb", [PRELUDE, SLIDER_CELL])
    return open_notebook(lab, name)


def _click_slider_at(nb, cell: int, fraction: float) -> None:
    """Click the time slider's track (a noUiSlider, as ipywidgets draws its sliders) at
    ``fraction`` of its length, as a user does.  The time slider's control is at the
    map's bottom right (its default position); other controls may hold sliders too
    (e.g. hidden opacity sliders of a layer panel)."""
    track = nb.map_locator(cell).locator(
        ".leaflet-bottom.leaflet-right .leaflet-control .noUi-base >> visible=true").first
    track.wait_for(state="visible", timeout=30_000)
    box = track.bounding_box()
    x = box["x"] + min(max(fraction * box["width"], 2), box["width"] - 2)
    nb.page.mouse.click(x, box["y"] + box["height"] / 2)


def test_click_on_slider_shows_next_frame(slider_page):
    nb, cell = slider_page, 1
    info = nb.map_info(cell)
    sid0, sid1 = info["frames"]
    frame0 = dict(info, source_id=sid0)
    frame1 = dict(info, source_id=sid1)
    before = nb.check_centre(cell, frame0, "local-slider-frame0", not_source=sid1)
    _click_slider_at(nb, cell, 1.0)  # two frames: the far end is the next one
    after = nb.check_centre(cell, frame1, "local-slider-frame1", not_source=sid0)
    print(f"slider: centre {before['centre_rgb']} -> {after['centre_rgb']}; "
          f"screenshots {before['screenshot']} {after['screenshot']}")

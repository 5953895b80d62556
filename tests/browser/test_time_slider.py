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


# ---------------------------------------------------------------- NDVI slider: Play, click
NAIP = sorted(str(p) for p in (Path(__file__).resolve().parents[1] / "data" / "naip").glob("*.tif"))
NDVI_CELL = f'''\
m = Map(basemap=None)
ts = m.add_time_slider({NAIP!r}, expression="(b4-b1)/(b4+b1)", colormap="RdYlGn", vmin=-0.2, vmax=0.6,
                       zoom_to_layer=True, time_interval=0.3)
m.add_colorbar(ts, label="NDVI")
info(m, ts.layers[0], frames=[lyr.source_id for lyr in ts.layers])
m
'''


@pytest.fixture(scope="module")
def ndvi_page(lab_for, open_notebook):
    lab = lab_for("local")
    name = lab.write_notebook("ndvi_slider.ipynb", [PRELUDE, NDVI_CELL])
    return open_notebook(lab, name)


def _central_clip(nb, cell):
    box = nb.map_locator(cell).bounding_box()
    return {"x": box["x"] + box["width"] * 0.35, "y": box["y"] + box["height"] * 0.35,
            "width": box["width"] * 0.3, "height": box["height"] * 0.3}


def _grab(nb, clip):
    from .pagetools import decode_png

    return decode_png(nb.page.screenshot(clip=clip))[..., :3].astype(float)


def test_play_shows_several_frames_and_never_a_blank_map(ndvi_page):
    """Play in the browser: sampled screenshots of the map's centre are never the bare
    background (the old frame stays until the new one is drawn) and show several
    different frames.  Samples are taken until 4 distinct frames were seen."""
    import numpy as np

    nb, cell = ndvi_page, 1
    info = nb.map_info(cell)
    nb.wait_tiles(cell, info["frames"][0], info["zoom"])
    nb.map_locator(cell).scroll_into_view_if_needed()
    clip = _central_clip(nb, cell)
    bg = np.array([221, 221, 221], float)  # Leaflet's container background (#ddd)
    first = _grab(nb, clip)
    assert (np.abs(first - bg).max(axis=2) > 12).mean() > 0.9, "the first frame is not drawn at the centre"
    requests_before = len(nb.requests)
    nb.map_locator(cell).locator("button[title='Play']").click()
    signatures, blank, n = [], [], 0
    try:
        for n in range(1, 600):
            img = _grab(nb, clip)
            if (np.abs(img - bg).max(axis=2) < 12).mean() > 0.5:
                blank.append(n)
                nb.page.screenshot(path=str(nb.artefacts / f"ndvi-play-blank-{n}.png"))
            sig = img.reshape(4, img.shape[0] // 4, 4, img.shape[1] // 4, 3).mean(axis=(1, 3)) \
                if img.shape[0] % 4 == 0 and img.shape[1] % 4 == 0 else img[::8, ::8].copy()
            if all(np.abs(sig - s).mean() > 3.0 for s in signatures):
                signatures.append(sig)
            if len(signatures) >= 4 and n >= 20:
                break
    finally:
        nb.map_locator(cell).locator("button[title='Pause']").click()
    assert blank == [], f"{len(blank)} of {n} samples show a blank map (screenshots in {nb.artefacts})"
    assert len(signatures) >= 4, f"Play showed {len(signatures)} distinct frames in {n} samples"
    ours = [u for u in nb.requests[requests_before:] if "/tiles/" in u]
    # every frame was loaded ahead while frame 0 was shown: Play asks for (almost) nothing new
    assert len(ours) <= 9, f"{len(ours)} tile requests during Play: {ours[:3]}"


def test_series_panel_leaves_the_centre_and_zoom_controls_visible(ndvi_page):
    nb, cell = ndvi_page, 1
    page = nb.page
    nb.map_info(cell)  # the cell printed its map info
    loc = nb.map_locator(cell)
    loc.scroll_into_view_if_needed()
    box = loc.bounding_box()
    # a click on the raster, off the centre
    page.mouse.click(box["x"] + box["width"] * 0.42, box["y"] + box["height"] * 0.55)
    page.wait_for_function(
        """(i) => { const c = document.querySelectorAll('.jp-Notebook .jp-Cell')[i].querySelector('.leaflet-container');
                    const panels = [...c.querySelectorAll('.leaflet-control')];
                    return panels.some(e => e.innerText.includes('Time slider at lat') && e.querySelector('img')) &&
                           panels.some(e => e.innerText.includes('NDVI:')); }""", arg=cell, timeout=60_000)
    page.wait_for_timeout(500)
    nb.screenshot_map(cell, "ndvi-series-panel")
    hits = page.evaluate(
        """(i) => { const c = document.querySelectorAll('.jp-Notebook .jp-Cell')[i].querySelector('.leaflet-container');
                    const r = c.getBoundingClientRect();
                    const what = (x, y) => { const e = document.elementFromPoint(x, y);
                        return {control: !!(e && e.closest('.leaflet-control') &&
                                            !e.closest('.leaflet-control-zoom')),
                                zoom: e && e.closest('.leaflet-control-zoom a') ? e.closest('a').className : null}; };
                    const z = [...c.querySelectorAll('.leaflet-control-zoom a')].map(a => {
                        const b = a.getBoundingClientRect(); return what(b.left + b.width / 2, b.top + b.height / 2); });
                    return {centre: what(r.left + r.width / 2, r.top + r.height / 2), zoom: z,
                            marker: c.querySelectorAll('.leaflet-overlay-pane path').length}; }""", cell)
    assert not hits["centre"]["control"], "a panel covers the map's centre"
    assert [z["zoom"] for z in hits["zoom"]] == ["leaflet-control-zoom-in", "leaflet-control-zoom-out"], hits
    assert hits["marker"] == 1, "no marker where the map was clicked"
    # the values panel names the quantity and rounds the value; its close button removes both panels
    text = loc.locator(".leaflet-top.leaflet-right").inner_text()
    assert "NDVI" in text and "lat " in text and "lon " in text
    import re

    value = re.search(r"NDVI: (-?[0-9.]+)", text).group(1)
    digits = value.lstrip("-").replace(".", "").lstrip("0")
    assert len(digits) <= 4, f"value not rounded to 4 significant digits: {value}"
    # the clicked point (left of the centre) is not under a panel either
    assert page.evaluate(
        """([x, y]) => !document.elementFromPoint(x, y).closest('.leaflet-control')""",
        [box["x"] + box["width"] * 0.42, box["y"] + box["height"] * 0.55])
    loc.locator(".leaflet-top.leaflet-right button[title='Close']").last.click()
    page.wait_for_function(
        """(i) => { const c = document.querySelectorAll('.jp-Notebook .jp-Cell')[i].querySelector('.leaflet-container');
                    const panels = [...c.querySelectorAll('.leaflet-control')];
                    return !panels.some(e => e.innerText.includes('Time slider at lat')) &&
                           !panels.some(e => e.innerText.includes('NDVI:')) &&
                           c.querySelectorAll('.leaflet-overlay-pane path').length === 0; }""",
        arg=cell, timeout=30_000)

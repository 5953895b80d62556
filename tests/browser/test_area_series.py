"""A polygon drawn with the draw control in the browser plots its area series in the panel."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from .pagetools import PRELUDE

NAIP = sorted(str(p) for p in (Path(__file__).resolve().parents[1] / "data" / "naip").glob("*.tif"))
CELL = f'''\
m = Map(basemap=None)
ts = m.add_time_slider({NAIP!r}, expression="(b4-b1)/(b4+b1)", colormap="RdYlGn", vmin=-0.2, vmax=0.6,
                       zoom_to_layer=True)
ts.value_label = "NDVI"
draw = ts.add_draw_control(stats=("mean", "median"))
info(m, ts.layers[0], frames=[lyr.source_id for lyr in ts.layers])
m
'''


@pytest.fixture(scope="module")
def area_page(lab_for, open_notebook):
    lab = lab_for("local")
    name = lab.write_notebook("area_series.ipynb", [PRELUDE, CELL])
    return open_notebook(lab, name)


def test_drawn_polygon_shows_the_series_and_a_csv_button(area_page):
    nb, cell = area_page, 1
    page = nb.page
    info = nb.map_info(cell)
    nb.wait_tiles(cell, info["frames"][0], info["zoom"])
    loc = nb.map_locator(cell)
    loc.scroll_into_view_if_needed()
    loc.locator("a.leaflet-draw-draw-polygon").click()
    box = loc.bounding_box()
    corners = [(0.40, 0.40), (0.60, 0.42), (0.58, 0.62), (0.42, 0.60)]
    for fx, fy in corners + corners[:1]:  # clicking the first vertex again closes the polygon
        page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
        page.wait_for_timeout(150)
    page.wait_for_function(
        """(i) => { const c = document.querySelectorAll('.jp-Notebook .jp-Cell')[i].querySelector('.leaflet-container');
                    return [...c.querySelectorAll('.leaflet-control')].some(e =>
                        e.innerText.includes('over the area') && e.querySelector('img') && e.querySelector('a[download]')); }""",
        arg=cell, timeout=60_000)
    page.wait_for_timeout(500)
    img, path = nb.screenshot_map(cell, "area-series-panel")
    panel = loc.locator(".leaflet-control", has_text="over the area").last
    title = panel.inner_text()
    n = int(re.search(r"over the area \((\d+) px\)", title).group(1))
    # the polygon spans ~20 % of the map's width and height: thousands of 1 px ... 5 m pixels
    assert n > 100, title
    href = panel.locator("a[download]").get_attribute("href")
    csv = base64.b64decode(href.split(",", 1)[1]).decode()
    lines = csv.splitlines()
    assert lines[0] == "date,label,mean,median,count" and len(lines) == 11
    assert lines[1].startswith("2009-08-18,2009-08-18,")
    # the panel's image is the plot (330 px wide), and the map's centre is not under a panel
    width = page.evaluate("(e) => e.getBoundingClientRect().width", panel.locator("img").element_handle())
    assert 300 <= width <= 340
    hit = page.evaluate(
        """(i) => { const c = document.querySelectorAll('.jp-Notebook .jp-Cell')[i].querySelector('.leaflet-container');
                    const r = c.getBoundingClientRect();
                    const e = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
                    return !!(e && e.closest('.leaflet-control')); }""", cell)
    assert not hit, "a panel covers the map's centre"
    # the clicks that placed the vertices left no inspector point or values box behind
    assert loc.locator(".leaflet-control", has_text=re.compile(r"^lat -?[0-9.]+, lon")).count() == 0
    assert loc.locator(".leaflet-overlay-pane path.leaflet-interactive").count() >= 1  # the polygon
    print(f"area series: {n} px, screenshot {path}")


def _panel_texts(nb, cell):
    return nb.page.evaluate(
        """(i) => { const c = document.querySelectorAll('.jp-Notebook .jp-Cell')[i].querySelector('.leaflet-container');
                    return [...c.querySelectorAll('.leaflet-control')].map(e => e.innerText); }""", cell)


def _area_px(nb, cell):
    for t in _panel_texts(nb, cell):
        found = re.search(r"over the area \((\d+) px\)", t)
        if found:
            return int(found.group(1))
    return None


def test_edit_recomputes_and_delete_clears_without_an_inspector_popup(area_page):
    """After the polygon of the test above: the edit tool moves a vertex (Save: a new
    series of fewer pixels), the delete tool's click on the polygon shows no values box,
    Save empties the series panel; with no tool on, a click is the inspector's again."""
    nb, cell = area_page, 1
    page = nb.page
    loc = nb.map_locator(cell)
    box = loc.bounding_box()
    at = lambda fx, fy: (box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)  # noqa: E731
    before = _area_px(nb, cell)
    assert before and before > 100
    # edit: drag the vertex at (0.58, 0.62) to the polygon's middle, then Save
    loc.locator("a.leaflet-draw-edit-edit").click()
    page.wait_for_selector(".leaflet-editing-icon", timeout=10_000)
    page.mouse.move(*at(0.58, 0.62))
    page.mouse.down()
    page.mouse.move(*at(0.54, 0.56), steps=5)
    page.mouse.move(*at(0.50, 0.50), steps=5)
    page.mouse.up()
    page.wait_for_timeout(300)
    loc.locator(".leaflet-draw-actions a", has_text="Save").first.click()
    page.wait_for_function(
        """([i, n]) => { const c = document.querySelectorAll('.jp-Notebook .jp-Cell')[i].querySelector('.leaflet-container');
                         return [...c.querySelectorAll('.leaflet-control')].some(e => {
                            const m = e.innerText.match(/over the area \\((\\d+) px\\)/); return m && +m[1] < n; }); }""",
        arg=[cell, before], timeout=60_000)
    after = _area_px(nb, cell)
    nb.screenshot_map(cell, "area-series-edited")
    assert 0 < after < before * 0.85, (before, after)
    # delete mode: a click on the polygon removes it and must show no values box
    loc.locator("a.leaflet-draw-edit-remove").click()
    page.wait_for_timeout(300)
    page.mouse.click(*at(0.47, 0.47))
    page.wait_for_timeout(3000)  # the kernel has long answered a click by now (see the control below)
    nb.screenshot_map(cell, "area-series-delete-mode-click")
    values_box = re.compile(r"^lat -?[0-9.]+, lon")
    assert loc.locator(".leaflet-control", has_text=values_box).count() == 0
    assert loc.locator(".leaflet-marker-pane .leaflet-interactive, .leaflet-overlay-pane circle").count() == 0
    assert _area_px(nb, cell) == after  # the series stays until Save
    loc.locator(".leaflet-draw-actions a", has_text="Save").first.click()
    page.wait_for_function(
        """(i) => { const c = document.querySelectorAll('.jp-Notebook .jp-Cell')[i].querySelector('.leaflet-container');
                    return ![...c.querySelectorAll('.leaflet-control')].some(e => e.innerText.includes('over the area')); }""",
        arg=cell, timeout=30_000)
    nb.screenshot_map(cell, "area-series-deleted")
    assert loc.locator(".leaflet-overlay-pane path.leaflet-interactive").count() == 0  # the polygon is gone
    # control: with no tool on, the same click is the inspector's (values box and pixel series)
    page.mouse.click(*at(0.47, 0.47))
    page.wait_for_function(
        """(i) => { const c = document.querySelectorAll('.jp-Notebook .jp-Cell')[i].querySelector('.leaflet-container');
                    return [...c.querySelectorAll('.leaflet-control')].some(e => /^lat -?[0-9.]+, lon/.test(e.innerText)); }""",
        arg=cell, timeout=30_000)
    img, path = nb.screenshot_map(cell, "area-series-click-after-delete")
    print(f"edited: {before} -> {after} px; screenshots in {path.parent}")

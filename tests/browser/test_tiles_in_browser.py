"""Our tiles in a real browser (Chromium) in JupyterLab: locally and behind a base URL as
on JupyterHub, both through the Jupyter server's proxy path of our server extension (the
kernel finds it there first, leafmap_tiles.client.urls; the other front ends are in
test_front_ends.py).  For a real RGB file and a single-band file with a
colormap, the pixels shown at the map's centre are those of the tile the server
returns for that place."""

from __future__ import annotations

from pathlib import Path

import pytest

from .pagetools import HUB_BASE, PRELUDE, SCENARIOS

DATA = Path(__file__).resolve().parents[1] / "data"
RGB = DATA / "bahamas_rgb.tif"                    # Landsat 7 RGB, uint8
SINGLE = DATA / "co_elevation_window.tif"         # elevation, float32

CELLS = [
    PRELUDE,
    f"show({str(RGB)!r})",
    f"show({str(SINGLE)!r}, colormap='terrain')",
]
RGB_CELL, SINGLE_CELL = 1, 2


@pytest.fixture(scope="module", params=["local", "hub"])
def shown(request, lab_for, open_notebook):
    scenario = request.param
    lab = lab_for(scenario)
    name = lab.write_notebook(f"tiles_{scenario}.ipynb", CELLS)
    nb = open_notebook(lab, name)
    nb.scenario = scenario
    return nb


def _tile_requests(nb, info):
    needle = f"/tiles/{info['source_id']}/"
    return [u for u in nb.requests if needle in u]


@pytest.mark.parametrize("cell,label", [(RGB_CELL, "rgb"), (SINGLE_CELL, "colormap")])
def test_centre_pixels_are_the_tile(shown, cell, label):
    info = shown.map_info(cell)
    result = shown.check_centre(cell, info, f"{shown.scenario}-{label}")
    print(f"{shown.scenario}/{label}: centre {result['centre_rgb']} mean |diff| {result['diff']:.2f} "
          f"tile {result['tile']['src']} screenshot {result['screenshot']}")
    assert _tile_requests(shown, info), "no tile of our layer was requested by the page"


def test_tiles_take_the_expected_route(shown):
    lab = shown.lab
    for cell in (RGB_CELL, SINGLE_CELL):
        info = shown.map_info(cell)
        tiles = _tile_requests(shown, info)
        assert tiles
        proxied = f"{lab.url}leafmap-tiles-proxy/{info['port']}/"
        base = HUB_BASE if shown.scenario == "hub" else "/"
        assert info["route"] == SCENARIOS[shown.scenario]["route"] == "proxy", info
        assert info["url"].startswith(f"{base}leafmap-tiles-proxy/{info['port']}/"), info["url"]
        assert all(u.startswith(proxied) for u in tiles), tiles[:3]
        # no request of the page went to the tile server's own port
        assert not [u for u in shown.requests if f"127.0.0.1:{info['port']}" in u]
    failed_tiles = [f for f in shown.failed if "/tiles/" in f]
    assert not failed_tiles, failed_tiles[:5]
    # nothing but 127.0.0.1 was reachable; the notebooks have no basemap
    assert not [u for u in shown.blocked if "/tiles/" in u]

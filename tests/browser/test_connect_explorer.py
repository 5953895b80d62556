"""``leafmap-tiles connect URL`` in Chromium, against ``leafmap-tiles serve`` and
against Terracotta's own server on one database: keys and datasets listed and
filtered, a dataset drawn with the colormap and stretch chosen, categories as a
legend, RGB from the last key.  Screenshots go to the browser artefacts."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import requests

from tests.conftest import free_port
from tests.connect.conftest import (  # noqa: F401  (fixtures)
    CATEGORIES,
    our_server,
    server_url,
    tc_db,
    terracotta_server,
)


def _rgba(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


@pytest.fixture
def explorer(server_url):  # noqa: F811  (the fixture imported above)
    port = free_port()
    exe = Path(sys.executable).with_name("leafmap-tiles")
    proc = subprocess.Popen([str(exe), "connect", server_url, "--port", str(port), "--no-browser"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    try:
        assert line.startswith(f"Exploring {server_url} (keys: kind, name, band) on http://127.0.0.1:{port}/"), \
            line + proc.stderr.read()
        yield f"http://127.0.0.1:{port}/", server_url
    finally:
        proc.terminate()
        proc.wait(20)


def _get(url: str) -> bytes:
    """A tile's bytes, honouring a 503's Retry-After (render past the deadline on a loaded machine)."""
    import time

    for _ in range(6):
        r = requests.get(url, timeout=60)
        if r.status_code != 503:
            break
        time.sleep(float(r.headers.get("Retry-After") or 1))
    assert r.status_code == 200, r.text
    return r.content


def _loaded_tiles(page, prefix: str) -> list[str]:
    srcs = page.eval_on_selector_all("#map img.leaflet-tile-loaded", "els => els.map(e => e.src)")
    return [s for s in srcs if s.startswith(prefix)]


def _wait_tiles(page, prefix: str, must=(), timeout: float = 60_000) -> list[str]:
    """Loaded tile URLs starting with ``prefix`` and containing each of ``must``,
    once at least one is on the map."""
    page.wait_for_function(
        """([prefix, must]) => Array.from(document.querySelectorAll('#map img.leaflet-tile-loaded'))
                     .some(e => e.src.startsWith(prefix) && must.every(m => e.src.includes(m)))""",
        arg=[prefix, list(must)], timeout=timeout)
    page.wait_for_timeout(500)
    return [t for t in _loaded_tiles(page, prefix) if all(m in t for m in must)]


def test_explorer_lists_filters_and_shows_datasets(browser, artefacts, explorer, request):
    page_url, server = explorer
    which = request.node.callspec.params["server_url"]
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(page_url + "?basemap=none")
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        assert page.locator("#keys input").count() == 3
        assert page.locator("#datasets tbody tr").count() == 6
        # filter as you type
        page.fill("#keys input[data-key='kind']", "lands")
        assert page.locator("#datasets tbody tr").count() == 4
        assert page.text_content("#count") == "(4 of 6)"
        page.fill("#keys input[data-key='band']", "b3")
        assert page.locator("#datasets tbody tr").count() == 1
        page.fill("#keys input[data-key='kind']", "")
        page.fill("#keys input[data-key='band']", "")

        # a dataset, with the stretch of its metadata and the colormap chosen
        md = requests.get(f"{server}/metadata/dem/rmnp/elevation", timeout=30).json()
        page.locator("#datasets tbody tr", has_text="rmnp").click()
        tiles = _wait_tiles(page, f"{server}/singleband/dem/rmnp/elevation/")
        assert float(page.input_value("#vmin")) == pytest.approx(md["percentiles"][1])
        assert float(page.input_value("#vmax")) == pytest.approx(md["percentiles"][97])
        page.select_option("#colormap", "magma")
        magma = _wait_tiles(page, f"{server}/singleband/dem/rmnp/elevation/", ["colormap=magma"])
        img = _rgba(_get(magma[0]))
        assert (img[..., 3] > 0).any()
        assert "linear-gradient" in page.eval_on_selector("#colorbar", "e => e.style.background")
        page.wait_for_timeout(500)
        page.screenshot(path=str(artefacts / f"connect_{which}_singleband.png"))

        # categories: explicit colours, legend with the class names
        page.locator("#datasets tbody tr", has_text="nlcd").click()
        tiles = _wait_tiles(page, f"{server}/singleband/landcover/nlcd/class/")
        assert all("colormap=explicit" in t for t in tiles)
        # the classes are drawn in the legend's colours
        swatches = page.eval_on_selector_all("#legend span.sw", "els => els.map(e => getComputedStyle(e).backgroundColor)")
        legend_rgb = {tuple(int(v) for v in c[c.index("(") + 1:-1].split(",")[:3]) for c in swatches}
        drawn = set()
        for t in tiles[:6]:
            img = _rgba(_get(t))
            drawn |= {tuple(int(v) for v in px[:3]) for px in img[img[..., 3] > 0].reshape(-1, 4)}
        assert len(drawn) >= 3 and drawn <= legend_rgb
        legend = page.text_content("#legend")
        for name, value in CATEGORIES.items():
            assert f"{name} ({value})" in legend
        page.screenshot(path=str(artefacts / f"connect_{which}_categories.png"))

        # RGB from the last key
        page.locator("#datasets tbody tr", has_text="b1").click()
        page.wait_for_selector("#rgbmode:not([disabled])")
        page.check("#rgbmode")
        page.select_option("#rgb_r", "b3")
        page.select_option("#rgb_g", "b2")
        page.select_option("#rgb_b", "b1")
        wanted = _wait_tiles(page, f"{server}/rgb/landsat/1990/", ["r=b3", "g=b2", "b=b1"])
        img = _rgba(_get(wanted[0]))
        assert (img[..., 3] > 0).sum() > 1000
        page.wait_for_timeout(500)
        page.screenshot(path=str(artefacts / f"connect_{which}_rgb.png"))
        assert errors == []
    finally:
        page.close()


def test_explorer_defaults_rgb_in_band_order_and_categories_in_the_files_colours(browser, explorer, request):
    import rasterio

    page_url, server = explorer
    which = request.node.callspec.params["server_url"]
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    try:
        page.goto(page_url + "?basemap=none")
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        cases = {  # last-key values as a server lists them (alphabetically) -> default R, G, B
            ("blue", "green", "nir", "red"): ["red", "green", "blue"],
            ("B", "G", "R"): ["R", "G", "B"],
            ("B02", "B03", "B04", "B08", "B8A"): ["B04", "B03", "B02"],
            ("SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5"): ["SR_B4", "SR_B3", "SR_B2"],
            ("b1", "b10", "b2", "b3"): ["b1", "b2", "b3"],  # band order, not "b1, b10, b2"
            ("b1", "b2", "b3", "b4"): ["b1", "b2", "b3"],
            ("only", "two"): ["only", "two", "two"],
        }
        for vals, want in cases.items():
            assert page.evaluate("v => defaultRgb(v)", list(vals)) == want, vals

        # categories: the colours of nlcd.tif's own colour table where the server gives it
        page.locator("#datasets tbody tr", has_text="nlcd").click()
        tiles = _wait_tiles(page, f"{server}/singleband/landcover/nlcd/class/")
        swatches = page.eval_on_selector_all("#legend span.sw", "els => els.map(e => getComputedStyle(e).backgroundColor)")
        legend_rgb = [tuple(int(v) for v in c[c.index("(") + 1:-1].split(",")[:3]) for c in swatches]
        with rasterio.open(Path(__file__).resolve().parents[1] / "data" / "nlcd.tif") as ds:
            table = ds.colormap(1)
        own = [tuple(table[v][:3]) for v in sorted(CATEGORIES.values())]
        if which == "ours":  # leafmap-tiles serve's /palette route
            assert page.get_attribute("#legend", "data-source") == "file"
            assert legend_rgb == own
            drawn = set()
            for t in tiles[:6]:
                img = _rgba(_get(t))
                drawn |= {tuple(int(v) for v in px[:3]) for px in img[img[..., 3] > 0].reshape(-1, 4)}
            assert len(drawn) >= 3 and drawn <= set(own)
        else:  # Terracotta's API has no colour table: the explorer's own palette
            assert page.get_attribute("#legend", "data-source") == "default"
            assert len(set(legend_rgb)) == len(CATEGORIES)
    finally:
        page.close()

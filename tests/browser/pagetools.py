"""Driving a JupyterLab notebook page with Playwright, and reading what our maps show."""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path

import numpy as np
from PIL import Image

HUB_BASE = "/user/test/"
# "local": a plain local JupyterLab; "hub": as a JupyterHub single-user server, with a
# base URL and JUPYTERHUB_SERVICE_PREFIX in its kernels' environment.  In the others the
# browser reaches no 127.0.0.1 port but the front end's own (as a browser on another
# machine than the kernel): "remote" JupyterLab with base URL "/" and no Hub variable
# (SSH tunnel, Docker, a VM); "notebook7" Jupyter Notebook 7; "voila" a standalone Voila
# server (no jupyter-server extension: comm bridge); "voila-ext" the notebook rendered by
# Voila's extension of a Jupyter server (/voila/render/..., proxy path); "comm" JupyterLab without our
# extension (tiles can only come over the comm bridge).  ``route`` is the route the
# kernel must find (leafmap_tiles.client.urls).
SCENARIOS = {
    "local": {"base_url": "/", "kernel_env": {}, "route": "proxy"},
    "hub": {"base_url": HUB_BASE, "kernel_env": {"JUPYTERHUB_SERVICE_PREFIX": HUB_BASE}, "route": "proxy"},
    "remote": {"base_url": "/", "kernel_env": {}, "block_loopback": True, "route": "proxy"},
    "notebook7": {"app": "notebook", "base_url": "/", "kernel_env": {}, "block_loopback": True, "route": "proxy"},
    "voila": {"app": "voila", "kernel_env": {}, "block_loopback": True, "route": "comm"},
    "voila-ext": {"view": "voila", "base_url": "/", "kernel_env": {}, "block_loopback": True, "route": "proxy"},
    "comm": {"base_url": "/", "kernel_env": {}, "extension": False, "block_loopback": True, "route": "comm"},
}


INFO_MARK = "LEAFMAP_TILES_INFO "
RUN_TIMEOUT_MS = 120_000
TILES_TIMEOUT_MS = 60_000

# Every cell of a test notebook starts with this helper; a cell calling ``show(...)``
# prints one INFO line about its map (so the test knows the layer's source id, URL,
# the server's port and the map's zoom) and displays the map.
PRELUDE = '''\
import json
from leafmap_tiles import Map

def info(m, lyr, **extra):
    d = {"source_id": lyr.source_id, "url": lyr.url, "port": lyr.server.port,
         "zoom": m.zoom, "center": list(m.center), "route": lyr.server.route.kind, **extra}
    print("LEAFMAP_TILES_INFO " + json.dumps(d))

def show(path, **kw):
    m = Map(basemap=None)
    lyr = m.add_raster(path, **kw)
    info(m, lyr)
    return m
'''


CELL_SELECTOR = ".jp-Notebook .jp-Cell"
CELL_SELECTOR_VOILA = ".jp-Cell"


def decode_png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))


class NotebookPage:
    """A notebook opened in JupyterLab in its own browser context."""

    def __init__(self, page, lab, blocked: list, artefacts: Path):
        self.page = page
        self.lab = lab
        self.voila = getattr(lab, "view", "") == "voila"
        self.blocked = blocked
        self.artefacts = artefacts
        self.requests: list[str] = []
        self.failed: list[str] = []
        self.console_errors: list[str] = []
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url} {r.failure}"))
        page.on("response", lambda r: r.status >= 400 and self.failed.append(f"{r.url} {r.status}"))
        page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))

    # ------------------------------------------------------------------ notebook
    def open_and_run(self, name: str) -> None:
        if self.voila:
            return self._open_voila(name)
        page = self.page
        t0 = time.monotonic()
        page.goto(self.lab.notebook_url(name), wait_until="domcontentloaded")
        page.wait_for_function(
            """(name) => {
                const app = window.jupyterapp;
                const w = app && app.shell && app.shell.currentWidget;
                return !!(w && w.context && w.context.path.endsWith(name) && w.sessionContext
                          && w.sessionContext.session && w.sessionContext.session.kernel
                          && w.sessionContext.session.kernel.connectionStatus === 'connected'
                          && w.sessionContext.session.kernel.status === 'idle');
            }""", arg=name, timeout=RUN_TIMEOUT_MS)
        t1 = time.monotonic()
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        page.wait_for_function(
            """() => {
                const w = window.jupyterapp.shell.currentWidget;
                const cells = w.content.widgets.filter(c => c.model.type === 'code');
                return cells.every(c => c.model.executionCount !== null && c.model.executionCount > 0)
                       && w.sessionContext.session.kernel.status === 'idle';
            }""", timeout=RUN_TIMEOUT_MS)
        self.timings = {"open": t1 - t0, "run": time.monotonic() - t1}
        errors = page.evaluate(
            """() => window.jupyterapp.shell.currentWidget.content.widgets
                 .filter(c => c.model.type === 'code')
                 .flatMap(c => c.model.outputs.toJSON())
                 .filter(o => o.output_type === 'error')
                 .map(o => o.ename + ': ' + o.evalue + '\\n' + (o.traceback || []).join('\\n'))""")
        if errors:
            raise AssertionError("notebook cells failed:\n" + re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(errors)))

    def _open_voila(self, name: str) -> None:
        """Voila runs the notebook itself and sends the page of outputs; wait until
        each cell that printed map info shows its map."""
        page = self.page
        t0 = time.monotonic()
        page.goto(self.lab.notebook_url(name), wait_until="domcontentloaded", timeout=RUN_TIMEOUT_MS)
        page.wait_for_function(
            """(mark) => {
                const cells = [...document.querySelectorAll('.jp-Cell')];
                const withInfo = cells.filter(c => c.innerText.includes(mark));
                return withInfo.length > 0 && withInfo.every(c => c.querySelector('.leaflet-container'));
            }""", arg=INFO_MARK.strip(), timeout=RUN_TIMEOUT_MS)
        self.timings = {"open": 0.0, "run": time.monotonic() - t0}
        errors = page.evaluate(
            """() => [...document.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]')]
                 .map(e => e.innerText)""")
        if errors:
            raise AssertionError("notebook cells failed in Voila:\n" + "\n".join(errors))

    def cell_text(self, index: int) -> str:
        if self.voila:
            return self.page.evaluate("(i) => document.querySelectorAll(CELLS)[i].innerText".replace("CELLS", repr(CELL_SELECTOR_VOILA)), index)
        return self.page.evaluate(
            """(i) => window.jupyterapp.shell.currentWidget.content.widgets[i].model.outputs.toJSON()
                 .map(o => o.text ? [].concat(o.text).join('') : '').join('')""", index)

    def map_info(self, index: int) -> dict:
        for line in self.cell_text(index).splitlines():
            if line.startswith(INFO_MARK):
                return json.loads(line[len(INFO_MARK):])
        raise AssertionError(f"cell {index} printed no map info: {self.cell_text(index)!r}")

    @property
    def cell_selector(self) -> str:
        return CELL_SELECTOR_VOILA if self.voila else CELL_SELECTOR

    def map_locator(self, index: int):
        return self.page.locator(self.cell_selector).nth(index).locator(".leaflet-container")

    # ------------------------------------------------------------------ tiles
    def wait_tiles(self, index: int, source_id: str, zoom: int, timeout_ms: int = TILES_TIMEOUT_MS) -> dict:
        """Wait until the map of cell ``index`` shows our layer's tiles at ``zoom``:
        every tile of that source and zoom in the DOM is loaded and fully faded in,
        one of them covers the map's centre.  Returns that tile's geometry (CSS px,
        relative to the map container) and URL."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            handle = self._wait_tiles(index, source_id, int(zoom), timeout_ms)
            tile = handle.json_value()
            if "broken" in tile:
                raise PlaywrightTimeout("every tile failed to load")
        except PlaywrightTimeout:
            ours = [u for u in self.requests if f"/tiles/{source_id}/" in u]
            raise AssertionError(
                f"the tiles of source {source_id} at zoom {zoom} did not show (all failed, or not within {timeout_ms / 1000:.0f} s); "
                f"{len(ours)} requested (first: {ours[:2]}), failed: {self.failed[:5]}, blocked: {self.blocked[:5]}, "
                f"console errors: {self.console_errors[:5]}") from None
        return tile

    def _wait_tiles(self, index, source_id, zoom, timeout_ms):
        return self.page.wait_for_function(
            """([i, sid, z, sel]) => {
                const cell = document.querySelectorAll(sel)[i];
                const cont = cell && cell.querySelector('.leaflet-container');
                if (!cont) return null;
                const cr = cont.getBoundingClientRect();
                if (cr.width < 10 || cr.height < 10) return null;
                const needle = '/tiles/' + sid + '/' + z + '/';
                // tiles of our source at that zoom, in a layer shown (a slider may keep the
                // next frames on the map at opacity 0 to load them ahead)
                // the URL asked for: a comm bridge swaps it for a blob: URL (conftest's
                // TILE_SRC_RECORDER keeps it in data-requested-src)
                const asked = im => im.getAttribute('data-requested-src') || im.src;
                const imgs = [...cont.querySelectorAll('img.leaflet-tile')].filter(im => asked(im).includes(needle));
                if (!imgs.length) return null;
                // (an image still waiting for the comm bridge has no src yet: not broken)
                if (imgs.every(im => im.getAttribute('src') && im.complete && im.naturalWidth === 0))
                    return {broken: imgs.map(im => im.src)};
                const ready = im => im.complete && im.naturalWidth > 0 && im.classList.contains('leaflet-tile-loaded')
                    && getComputedStyle(im).opacity === '1' && getComputedStyle(im.parentElement).opacity === '1'
                    && getComputedStyle(im.closest('.leaflet-layer') || im).opacity === '1';
                if (!imgs.every(ready)) return null;
                const cx = cr.left + cr.width / 2, cy = cr.top + cr.height / 2;
                const hit = imgs.find(im => { const r = im.getBoundingClientRect();
                    return r.left <= cx && cx < r.right && r.top <= cy && cy < r.bottom; });
                if (!hit) return null;
                const r = hit.getBoundingClientRect();
                return {src: new URL(asked(hit), location.href).href, shown: hit.src, left: r.left - cr.left, top: r.top - cr.top, width: r.width, height: r.height,
                        natural: [hit.naturalWidth, hit.naturalHeight], container: [cr.width, cr.height],
                        background: getComputedStyle(cont).backgroundColor, n_tiles: imgs.length};
            }""", arg=[index, source_id, zoom, self.cell_selector], timeout=timeout_ms, polling=100)

    def screenshot_map(self, index: int, name: str) -> tuple[np.ndarray, Path]:
        path = self.artefacts / f"{name}.png"
        loc = self.map_locator(index)
        loc.scroll_into_view_if_needed()
        self.page.wait_for_timeout(50)
        data = loc.screenshot(path=str(path), animations="disabled")
        self.page.screenshot(path=str(self.artefacts / f"{name}-page.png"))
        return decode_png(data), path

    def fetch(self, url: str) -> bytes:
        """GET ``url`` with this page's cookies (outside the page: not one of its requests)."""
        r = self.page.request.get(url)
        assert r.ok, f"{url} answered {r.status}"
        return r.body()

    def check_centre(self, index: int, info: dict, name: str, tol: float = 6.0, not_source: str | None = None) -> dict:
        """Screenshot the map of cell ``index`` and compare the pixels at its centre
        with the PNG the server returns for the tile of ``info["source_id"]`` displayed
        there.  With ``not_source``, also check that the same tile of that other source
        looks different there (so that the check tells the two apart)."""
        tile = self.wait_tiles(index, info["source_id"], info["zoom"])
        shot, path = self.screenshot_map(index, name)
        # geometry is relative to the map container, so it holds after scrolling
        expected = decode_png(self.fetch(tile["src"]))
        best = min((_patch(shot, expected, tile, (dx, dy)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)),
                   key=lambda p: p["diff"])
        got, want = best["got"], best["want"]
        assert len(want) >= 25, f"the centre patch is not inside the tile {tile}"
        # the expected tile has data (opaque) at the centre, else the test proves nothing
        assert (want[:, 3] == 255).all(), f"expected tile {tile['src']} is not opaque at the map centre"
        assert best["diff"] <= tol, (
            f"screenshot {path} at the map centre differs from tile {tile['src']}: mean |diff| "
            f"{best['diff']:.1f}; got {got[:3, :3].tolist()} want {want[:3, :3].tolist()}")
        bg = _css_rgb(tile["background"])
        if bg is not None:
            assert np.abs(got[:, :3] - np.array(bg, float)).max() > 10, "the map centre shows only the background"
        out = {"tile": tile, "screenshot": path, "diff": best["diff"], "centre_rgb": got.mean(axis=0)[:3].round(1).tolist()}
        if not_source:
            other_src = tile["src"].replace(f"/tiles/{info['source_id']}/", f"/tiles/{not_source}/")
            other = _patch(shot, decode_png(self.fetch(other_src)), tile, best["shift"])
            # clearly farther from what is shown than the expected tile is
            assert other["diff"] > best["diff"] + tol, (
                f"the tile of {not_source} looks like that of {info['source_id']} at the centre "
                f"(mean |diff| {other['diff']:.1f}), or is still shown")
            out["diff_other"] = other["diff"]
        return out


def _patch(shot: np.ndarray, expected: np.ndarray, tile: dict, shift, half: int = 4) -> dict:
    """The 9x9 patch at the screenshot's centre and the pixels of ``expected`` (the tile
    PNG) displayed there, the tile being placed as ``tile`` says, shifted by ``shift``
    screen pixels (sub-pixel placement); their mean absolute RGB difference."""
    h, w = shot.shape[:2]
    cx, cy = w // 2, h // 2
    sx = tile["natural"][0] / tile["width"]
    sy = tile["natural"][1] / tile["height"]
    dx, dy = shift
    got, want = [], []
    for py in range(cy - half, cy + half + 1):
        for px in range(cx - half, cx + half + 1):
            tx = int((px + dx - tile["left"]) * sx)
            ty = int((py + dy - tile["top"]) * sy)
            if 0 <= tx < expected.shape[1] and 0 <= ty < expected.shape[0]:
                got.append(shot[py, px])
                want.append(expected[ty, tx])
    got_a, want_a = np.array(got, float).reshape(-1, 4), np.array(want, float).reshape(-1, 4)
    diff = float(np.abs(got_a[:, :3] - want_a[:, :3]).mean()) if len(got) else float("inf")
    return {"diff": diff, "got": got_a, "want": want_a, "shift": shift}


def _css_rgb(css: str):
    m = re.match(r"rgba?\((\d+),\s*(\d+),\s*(\d+)(?:,\s*([\d.]+))?\)", css or "")
    if not m or (m.group(4) is not None and float(m.group(4)) == 0):
        return None
    return [int(m.group(i)) for i in (1, 2, 3)]

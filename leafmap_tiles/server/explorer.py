"""``leafmap-tiles connect URL``: a small web explorer of any Terracotta-compatible
server (``leafmap-tiles serve``, or Terracotta itself).

One page (:data:`PAGE`): the server's keys, each with a filter box; its datasets
(every page of ``/datasets``) filtered as you type; a click shows a dataset on a
Leaflet map with the colormap and stretch chosen (default: the 2nd and 98th
percentiles of its metadata) and a colorbar from the server's ``/colormap``; a
dataset with ``categories`` metadata (Terracotta's categorical-data convention,
``{"categories": {name: value}}``) is drawn with ``colormap=explicit`` and a legend
of its classes; RGB composes three values of the last key (``/rgb``), each with its
own stretch.

Metadata requests go through this app (``/api/...`` is forwarded to the server, so
no CORS set-up is needed and errors are JSON); the browser loads the tiles from the
server itself, as ``terracotta connect`` does, so it must reach that server.

Leaflet is the copy the package already installs: ipyleaflet's ``jupyter-leaflet``
notebook bundle (an AMD module that embeds Leaflet and its CSS), loaded through a
minimal AMD ``define`` (:func:`leaflet_bundle`); no CDN, nothing downloaded.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

from leafmap_tiles.errors import SourceTimeoutError, SourceUnreachableError, TileServerError
from leafmap_tiles.server.errors import ErrorMiddleware, http_exception_handler

log = logging.getLogger("leafmap_tiles.server.explorer")

#: colormaps offered (names that both Terracotta and leafmap-tiles serve)
COLORMAPS = ("greys", "viridis", "magma", "inferno", "plasma", "cividis", "turbo", "terrain", "gist_earth",
             "rdylgn", "rdylbu", "rdbu", "spectral", "blues", "greens", "reds", "ylgnbu", "brbg")


def leaflet_bundle() -> str:
    """Path of ipyleaflet's ``jupyter-leaflet`` notebook bundle (``index.js``), which
    carries Leaflet and its CSS.

    Raises:
        TileServerError: ipyleaflet's data files are not installed.
    """
    roots = []
    try:
        from jupyter_core.paths import jupyter_path

        roots += jupyter_path("nbextensions")
    except ImportError:  # pragma: no cover - jupyter_core comes with ipywidgets' front ends
        pass
    roots.append(os.path.join(sys.prefix, "share", "jupyter", "nbextensions"))
    import site

    roots.append(os.path.join(site.getuserbase(), "share", "jupyter", "nbextensions"))
    for root in roots:
        path = os.path.join(root, "jupyter-leaflet", "index.js")
        if os.path.isfile(path):
            return path
    raise TileServerError("ipyleaflet's jupyter-leaflet bundle is not installed (share/jupyter/nbextensions/"
                          "jupyter-leaflet/index.js); reinstall ipyleaflet")


def normalise_url(url: str) -> str:
    """``http://host:port[/prefix]`` of a server given as a URL or as ``host:port``
    (Terracotta's ``connect`` spelling), without a trailing ``/``.

    Raises:
        ValueError: not an http(s) URL or ``host:port``.
    """
    from leafmap_tiles.store.http import normalise_url as _normalise

    return _normalise(url)  # StoreError is a ValueError


def create_explorer_app(target: str, timeout: float = 30.0) -> Starlette:
    """The explorer of the Terracotta-compatible server at ``target`` (an http(s)
    URL, see :func:`normalise_url`) as a Starlette app.  Its errors are the servers'
    JSON ``{"message", "error"}`` with the status of the one table
    (:data:`leafmap_tiles.server.errors.STATUS`): a server that does not answer in
    ``timeout`` is 504, one that cannot be reached 502, an unknown route 404."""
    import requests

    target = normalise_url(target)
    bundle = leaflet_bundle()
    session = requests.Session()
    config = {"server": target, "colormaps": list(COLORMAPS)}

    async def page(request: Request):
        html = PAGE.replace("__CONFIG__", json.dumps(config).replace("</", "<\\/"))
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    async def leaflet(request: Request):
        return FileResponse(bundle, media_type="text/javascript; charset=utf-8")

    async def api(request: Request):
        path = request.path_params["path"]
        url = f"{target}/{path}"

        def work():
            return session.get(url, params=list(request.query_params.multi_items()), timeout=timeout)

        try:
            r = await asyncio.get_running_loop().run_in_executor(None, work)
        # (the page names the server: the message need not, and the error path scrubs URLs)
        except requests.Timeout:
            raise SourceTimeoutError(f"the server did not answer in {timeout:g} s") from None
        except requests.RequestException as exc:
            raise SourceUnreachableError(f"cannot reach the server: {type(exc).__name__}") from None
        ctype = r.headers.get("content-type", "application/json")
        return Response(r.content, status_code=r.status_code, media_type=ctype.split(";")[0])

    return Starlette(
        routes=[
            Route("/", page),
            Route("/static/leaflet.js", leaflet),
            Route("/api/{path:path}", api),
        ],
        middleware=[Middleware(ErrorMiddleware, logger=log)],
        exception_handlers={HTTPException: http_exception_handler},
    )


PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>leafmap-tiles connect</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<script>
// the jupyter-leaflet bundle is an AMD module: give it a define() whose
// @jupyter-widgets/base is an empty stand-in; loading it defines window.L
(function () {
  var stub = new Proxy({}, {get: function (t, k) { return k === "__esModule" ? false : class {}; }});
  window.define = function (deps, factory) {
    var args = deps.map(function (d) {
      return d === "module" ? {id: "jupyter-leaflet", uri: "static/leaflet.js", config: function () { return {}; }} : stub;
    });
    try { factory.apply(null, args); } catch (e) { console.warn("jupyter-leaflet bundle:", e); }
  };
  window.define.amd = true;
})();
</script>
<script src="static/leaflet.js" charset="utf-8"></script>
<style>
  html, body { margin: 0; height: 100%; font: 13px system-ui, sans-serif; color: #222; }
  #app { display: flex; height: 100%; }
  #side { width: 360px; min-width: 300px; overflow: auto; border-right: 1px solid #ccc; padding: 8px 10px; box-sizing: border-box; }
  #map { flex: 1; background: #e8e8e8; }
  h1 { font-size: 15px; margin: 2px 0 6px; }
  h2 { font-size: 13px; margin: 12px 0 4px; text-transform: uppercase; color: #555; }
  .server { color: #555; word-break: break-all; }
  .keyrow { display: flex; align-items: center; margin: 2px 0; }
  .keyrow label { width: 90px; font-weight: 600; overflow: hidden; text-overflow: ellipsis; }
  .keyrow input { flex: 1; padding: 2px 4px; }
  table { border-collapse: collapse; width: 100%; margin-top: 4px; }
  th, td { text-align: left; padding: 2px 4px; border-bottom: 1px solid #eee; white-space: nowrap; }
  tbody tr { cursor: pointer; }
  tbody tr:hover { background: #eef4ff; }
  tr.selected { background: #cfe0ff !important; }
  #count { color: #555; }
  .row { display: flex; gap: 6px; align-items: center; margin: 4px 0; flex-wrap: wrap; }
  .row input[type=number] { width: 90px; }
  #colorbar { height: 14px; border: 1px solid #999; margin-top: 4px; }
  #cbticks { display: flex; justify-content: space-between; color: #333; }
  #legend div { display: flex; align-items: center; gap: 6px; margin: 2px 0; }
  #legend span.sw { width: 14px; height: 14px; border: 1px solid #777; display: inline-block; }
  #error { color: #b00020; white-space: pre-wrap; }
  .hidden { display: none !important; }
  button { padding: 2px 8px; }
</style></head>
<body><div id="app">
<div id="side">
  <h1>Terracotta explorer</h1>
  <div class="server" id="server"></div>
  <div id="error"></div>
  <h2>Keys</h2><div id="keys"></div>
  <h2>Datasets <span id="count"></span></h2>
  <div style="max-height: 260px; overflow: auto;"><table id="datasets"><thead></thead><tbody></tbody></table></div>
  <div id="style" class="hidden">
    <h2>Layer <span id="current"></span></h2>
    <div class="row"><label><input type="radio" name="mode" value="singleband" checked> single band</label>
      <label><input type="radio" name="mode" value="rgb" id="rgbmode"> RGB (last key)</label></div>
    <div id="single">
      <div class="row">colormap <select id="colormap"></select></div>
      <div class="row">stretch <input type="number" id="vmin" step="any"> to <input type="number" id="vmax" step="any">
        <select id="preset"><option value="p">p2–p98</option><option value="m">min–max</option></select></div>
      <div id="colorbar"></div><div id="cbticks"><span id="cbmin"></span><span id="cbmax"></span></div>
    </div>
    <div id="rgb" class="hidden"></div>
    <div id="legend"></div>
    <div class="row">opacity <input type="range" id="opacity" min="0" max="1" step="0.05" value="1"></div>
  </div>
</div>
<div id="map"></div>
</div>
<script>
"use strict";
var CONFIG = __CONFIG__;
var state = {keys: [], datasets: [], filters: {}, selected: null, meta: {}, layer: null, seq: 0};
var el = function (id) { return document.getElementById(id); };
var map = L.map("map", {zoomControl: true}).setView([20, 0], 2);
var params = new URLSearchParams(location.search);
if (params.get("basemap") !== "none") {
  L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png",
              {maxZoom: 19, attribution: "&copy; OpenStreetMap contributors"}).addTo(map);
}
el("server").textContent = CONFIG.server;
CONFIG.colormaps.forEach(function (c) {
  var o = document.createElement("option"); o.value = c; o.textContent = c; el("colormap").appendChild(o);
});
el("colormap").value = "viridis";

function showError(msg) { el("error").textContent = msg || ""; }
function api(path, query) {
  var q = query ? "?" + new URLSearchParams(query).toString() : "";
  return fetch("api/" + path + q).then(function (r) {
    return r.json().catch(function () { return {}; }).then(function (body) {
      if (!r.ok) { throw new Error((body && body.message) || ("HTTP " + r.status)); }
      return body;
    });
  });
}
function enc(keys) { return keys.map(encodeURIComponent).join("/"); }
function tileUrl(kind, keys, query) {
  var q = new URLSearchParams(query).toString();
  return CONFIG.server + "/" + kind + "/" + (keys.length ? enc(keys) + "/" : "") + "{z}/{x}/{y}.png" + (q ? "?" + q : "");
}
function kvOf(d) { return state.keys.map(function (k) { return String(d[k.key]); }); }
function same(a, b) { return a && b && a.length === b.length && a.every(function (v, i) { return v === b[i]; }); }

function loadDatasets(page, acc) {
  return api("datasets", {limit: 1000, page: page}).then(function (body) {
    acc = acc.concat(body.datasets || []);
    if ((body.datasets || []).length === 1000 && page < 50) { return loadDatasets(page + 1, acc); }
    return acc;
  });
}

function buildKeys() {
  var box = el("keys"); box.innerHTML = "";
  var head = document.createElement("tr");
  state.keys.forEach(function (k) {
    var row = document.createElement("div"); row.className = "keyrow";
    var lab = document.createElement("label"); lab.textContent = k.key; lab.title = k.description || "";
    var inp = document.createElement("input"); inp.placeholder = k.description || "filter"; inp.dataset.key = k.key;
    inp.addEventListener("input", function () { state.filters[k.key] = inp.value.trim().toLowerCase(); renderTable(); });
    row.appendChild(lab); row.appendChild(inp); box.appendChild(row);
    var th = document.createElement("th"); th.textContent = k.key; head.appendChild(th);
  });
  var thead = el("datasets").querySelector("thead"); thead.innerHTML = ""; thead.appendChild(head);
}

function visibleDatasets() {
  return state.datasets.filter(function (d) {
    return state.keys.every(function (k) {
      var f = state.filters[k.key]; return !f || String(d[k.key]).toLowerCase().indexOf(f) >= 0;
    });
  });
}

function renderTable() {
  var rows = visibleDatasets();
  el("count").textContent = "(" + rows.length + " of " + state.datasets.length + ")";
  var tbody = el("datasets").querySelector("tbody"); tbody.innerHTML = "";
  rows.slice(0, 500).forEach(function (d) {
    var kv = kvOf(d);
    var tr = document.createElement("tr");
    if (same(kv, state.selected)) { tr.className = "selected"; }
    kv.forEach(function (v) { var td = document.createElement("td"); td.textContent = v; tr.appendChild(td); });
    tr.addEventListener("click", function () { select(kv); });
    tbody.appendChild(tr);
  });
}

function metadata(kv) {
  var id = kv.join("/");
  if (state.meta[id]) { return Promise.resolve(state.meta[id]); }
  return api("metadata/" + enc(kv)).then(function (md) { state.meta[id] = md; return md; });
}

function categories(md) {
  var c = md && md.metadata && md.metadata.categories;
  if (!c || typeof c !== "object" || Array.isArray(c) || !Object.keys(c).length) { return null; }
  return c;
}
var PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94"];

function setLayer(url, bounds) {
  if (state.layer) { map.removeLayer(state.layer); }
  var opts = {maxZoom: 22, opacity: parseFloat(el("opacity").value)};
  if (bounds) { opts.bounds = L.latLngBounds([bounds[1], bounds[0]], [bounds[3], bounds[2]]); }
  state.layer = L.tileLayer(url, opts).addTo(map);
  state.layer.getContainer && (state.layer._url_for_tests = url);
  window.currentTileUrl = url;
}

function drawColorbar(lo, hi) {
  api("colormap", {colormap: el("colormap").value, stretch_range: JSON.stringify([lo, hi]), num_values: 32})
    .then(function (body) {
      var stops = body.colormap.map(function (c, i, a) {
        var p = (100 * i / (a.length - 1)).toFixed(1);
        return "rgba(" + c.rgba[0] + "," + c.rgba[1] + "," + c.rgba[2] + "," + (c.rgba[3] / 255) + ") " + p + "%";
      });
      el("colorbar").style.background = "linear-gradient(to right, " + stops.join(", ") + ")";
      el("cbmin").textContent = fmt(lo); el("cbmax").textContent = fmt(hi);
    }).catch(function (e) { showError("colormap: " + e.message); });
}
function fmt(v) { return Math.abs(v) >= 1000 || Number.isInteger(v) ? String(Math.round(v * 100) / 100) : v.toPrecision(4); }

function presetRange(md) {
  if (el("preset").value === "m" || !md.percentiles || md.percentiles.length < 98) { return md.range; }
  return [md.percentiles[1], md.percentiles[97]];
}

function showSingle() {
  ++state.seq;  // a pending RGB or selection answer must not replace this layer
  var kv = state.selected; var md = state.meta[kv.join("/")];
  var cats = categories(md);
  el("legend").innerHTML = "";
  el("single").classList.toggle("hidden", !!cats);
  if (cats) {
    var seq = state.seq;
    // the file's own colour table where the server gives it (leafmap-tiles serve's
    // /palette; Terracotta has no such route: then a fixed qualitative palette)
    filePalette(kv).then(function (table) {
      if (seq !== state.seq) { return; }
      var cmap = {};
      Object.keys(cats).sort(function (a, b) { return Number(cats[a]) - Number(cats[b]); }).forEach(function (name, i) {
        var own = table && table[String(Number(cats[name]))];
        var col = own ? "#" + own.slice(0, 3).map(function (c) { return (256 + c).toString(16).slice(1); }).join("")
                      : PALETTE[i % PALETTE.length];
        cmap[String(cats[name])] = col;
        var row = document.createElement("div");
        row.innerHTML = '<span class="sw"></span><span></span>';
        row.firstChild.style.background = col; row.lastChild.textContent = name + " (" + cats[name] + ")";
        el("legend").appendChild(row);
      });
      el("legend").dataset.source = table ? "file" : "default";
      setLayer(tileUrl("singleband", kv, {colormap: "explicit", explicit_color_map: JSON.stringify(cmap)}), md.bounds);
    });
    return;
  }
  var lo = parseFloat(el("vmin").value), hi = parseFloat(el("vmax").value);
  setLayer(tileUrl("singleband", kv, {colormap: el("colormap").value, stretch_range: JSON.stringify([lo, hi])}), md.bounds);
  drawColorbar(lo, hi);
}

var palettes = {};
function filePalette(kv) {  // {value: [r, g, b, a]} of the dataset's colour table, or null
  var id = kv.join("/");
  if (!(id in palettes)) {
    palettes[id] = api("palette/" + enc(kv)).then(function (body) {
      if (!body || !Array.isArray(body.palette)) { return null; }
      var t = {}; body.palette.forEach(function (e) { t[String(e.value)] = e.rgba; }); return t;
    }).catch(function () { return null; });
  }
  return palettes[id];
}

// Default red, green, blue among the last key's values: colour names (red/green/blue,
// r/g/b), else the band numbers of Sentinel-2 (B04/B03/B02) or Landsat 8/9 (B4/B3/B2),
// else the first three in band order (numbers compared as numbers: b2 before b10),
// never the alphabetical order of the names (which puts "blue" first).
function defaultRgb(vals) {
  function find(re) { for (var i = 0; i < vals.length; i++) { if (re.test(vals[i])) { return vals[i]; } } return null; }
  var named = [find(/^(red|r)$/i), find(/^(green|g)$/i), find(/^(blue|b)$/i)];
  if (named.every(Boolean)) { return named; }
  named = [find(/(^|[^a-z])red([^a-z]|$)/i), find(/(^|[^a-z])green([^a-z]|$)/i), find(/(^|[^a-z])blue([^a-z]|$)/i)];
  if (named.every(Boolean)) { return named; }
  var byNumber = {};
  vals.forEach(function (v) {
    var m = /^(?:.*[_-])?b(?:and)?[_-]?0*(\d+)$/i.exec(v);
    if (m && !(m[1] in byNumber)) { byNumber[m[1]] = v; }
  });
  var nums = Object.keys(byNumber).map(Number);
  var s2 = vals.some(function (v) { return /(^|[_-])b(0\d|8a)$/i.test(v); });
  var l8 = nums.some(function (n) { return n >= 5 && n <= 11; });
  if ((s2 || l8) && [4, 3, 2].every(function (n) { return String(n) in byNumber; })) {
    return [byNumber["4"], byNumber["3"], byNumber["2"]];
  }
  var ordered = vals.slice().sort(function (a, b) {
    return a.localeCompare(b, undefined, {numeric: true, sensitivity: "base"});
  });
  return [0, 1, 2].map(function (i) { return ordered[Math.min(i, ordered.length - 1)]; });
}
window.defaultRgb = defaultRgb;  // for tests

function rgbCandidates() {
  var kv = state.selected; var n = state.keys.length;
  return state.datasets.map(kvOf).filter(function (o) { return same(o.slice(0, n - 1), kv.slice(0, n - 1)); })
    .map(function (o) { return o[n - 1]; });
}

function buildRgb() {
  var vals = rgbCandidates(); var box = el("rgb"); box.innerHTML = "";
  var initial = defaultRgb(vals);
  ["r", "g", "b"].forEach(function (ch, i) {
    var row = document.createElement("div"); row.className = "row";
    var sel = document.createElement("select"); sel.id = "rgb_" + ch;
    vals.forEach(function (v) { var o = document.createElement("option"); o.value = v; o.textContent = v; sel.appendChild(o); });
    sel.value = initial[i];
    sel.addEventListener("change", showRgb);
    row.appendChild(document.createTextNode(ch.toUpperCase() + " ")); row.appendChild(sel); box.appendChild(row);
  });
}

function showRgb() {
  var kv = state.selected; var n = state.keys.length; var base = kv.slice(0, n - 1);
  var chosen = ["r", "g", "b"].map(function (ch) { return el("rgb_" + ch).value; });
  var seq = ++state.seq;  // answers may come back out of order: only the last choice is drawn
  el("legend").innerHTML = "";
  Promise.all(chosen.map(function (v) { return metadata(base.concat([v])); })).then(function (mds) {
    if (seq !== state.seq) { return; }
    var q = {r: chosen[0], g: chosen[1], b: chosen[2]};
    ["r", "g", "b"].forEach(function (ch, i) { q[ch + "_range"] = JSON.stringify(presetRange(mds[i])); });
    setLayer(tileUrl("rgb", base, q), mds[0].bounds);
  }).catch(function (e) { showError(e.message); });
}

function render() {
  var rgb = el("rgbmode").checked;
  el("rgb").classList.toggle("hidden", !rgb);
  el("single").classList.toggle("hidden", rgb);
  if (rgb) { showRgb(); } else { showSingle(); }
}

function select(kv) {
  showError("");
  state.selected = kv; renderTable();
  var seq = ++state.seq;
  metadata(kv).then(function (md) {
    if (seq !== state.seq) { return; }
    el("style").classList.remove("hidden");
    el("current").textContent = kv.join(" / ");
    var r = presetRange(md); el("vmin").value = r[0]; el("vmax").value = r[1];
    var can = rgbCandidates().length >= 3;
    el("rgbmode").disabled = !can; if (!can) { document.querySelector("input[value=singleband]").checked = true; }
    if (can) { buildRgb(); }
    var b = md.bounds; map.fitBounds([[b[1], b[0]], [b[3], b[2]]]);
    render();
  }).catch(function (e) { showError("metadata of " + kv.join("/") + ": " + e.message); });
}

["colormap", "vmin", "vmax"].forEach(function (id) { el(id).addEventListener("change", render); });
el("preset").addEventListener("change", function () {
  if (!state.selected) { return; }
  var r = presetRange(state.meta[state.selected.join("/")]); el("vmin").value = r[0]; el("vmax").value = r[1]; render();
});
document.querySelectorAll("input[name=mode]").forEach(function (r) { r.addEventListener("change", render); });
el("opacity").addEventListener("input", function () { if (state.layer) { state.layer.setOpacity(parseFloat(el("opacity").value)); } });

api("keys").then(function (body) {
  state.keys = body.keys || []; buildKeys();
  return loadDatasets(0, []);
}).then(function (ds) {
  state.datasets = ds; renderTable();
  document.body.dataset.ready = "1";
}).catch(function (e) { showError("cannot read " + CONFIG.server + ": " + e.message); document.body.dataset.ready = "error"; });
</script></body></html>
"""

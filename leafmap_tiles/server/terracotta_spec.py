"""OpenAPI 3.0 description of the Terracotta-compatible routes (``/swagger.json``)
and a self-contained page that lists them (``/apidoc``, no external scripts)."""

from __future__ import annotations


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("leafmap_tiles")
    except Exception:
        return "0"


def _path(name: str, description: str, schema=None) -> dict:
    return {"in": "path", "name": name, "required": True, "description": description,
            "schema": schema or {"type": "string"}}


_XYZ = [
    _path("tile_z", "zoom level", {"type": "integer"}),
    _path("tile_x", "tile column", {"type": "integer"}),
    _path("tile_y", "tile row", {"type": "integer"}),
]
_PNG = {
    "200": {"description": "PNG image", "content": {"image/png": {}}},
    "400": {"description": "Invalid query parameters (JSON {message})"},
    "404": {"description": "No dataset found for the given key values (JSON {message})"},
}


def _tile_routes(kind: str, description: str, some: dict, query: list[dict]) -> dict:
    """The four routes of ``/rgb`` or ``/compute``: tile and preview, with all key
    values but the last in the path, and without any (a store of one key: the
    datasets are named by the query parameters alone)."""
    keyless = f"{description}; this form is for a store of one key, whose values the query names"
    return {
        f"/{kind}/{{keys}}/{{tile_z}}/{{tile_x}}/{{tile_y}}.png": {"get": {
            "summary": f"/{kind} (tile)", "description": description,
            "parameters": [some, *_XYZ, *query], "responses": _PNG}},
        f"/{kind}/{{keys}}/preview.png": {"get": {
            "summary": f"/{kind} (preview)", "description": description,
            "parameters": [some, *query], "responses": _PNG}},
        f"/{kind}/{{tile_z}}/{{tile_x}}/{{tile_y}}.png": {"get": {
            "summary": f"/{kind} (tile, one key)", "description": keyless,
            "parameters": [*_XYZ, *query], "responses": _PNG}},
        f"/{kind}/preview.png": {"get": {
            "summary": f"/{kind} (preview, one key)", "description": keyless,
            "parameters": list(query), "responses": _PNG}},
    }


def openapi(colormaps: list[str]) -> dict:
    """The OpenAPI document; ``colormaps`` are the accepted ``colormap`` names.  The
    query parameters of each route are those of its class in
    :mod:`leafmap_tiles.server.terracotta_params` (one description of each)."""
    from leafmap_tiles.server import terracotta_params as tp

    def query(cls) -> list[dict]:
        return tp.openapi_parameters(cls, colormaps)

    single, rgb, compute = query(tp.SinglebandQuery), query(tp.RgbQuery), query(tp.ComputeQuery)
    keys = _path("keys", "key values separated by '/', in key order")
    some = _path("keys", "all key values but the last, separated by '/'")
    paths = {
        "/keys": {"get": {"summary": "/keys", "description": "Names and descriptions of all keys, in order",
                          "responses": {"200": {"description": '{"keys": [{"key", "description"?}]}'}}}},
        "/datasets": {"get": {
            "summary": "/datasets",
            "description": "Key values of the datasets matching the given key values; a value may be a list "
                           "'[a,b]' (any of them)",
            "parameters": query(tp.DatasetsQuery),
            "responses": {"200": {"description": '{"limit", "page", "datasets": [{key: value}]}'},
                          "400": {"description": "unknown key or invalid parameter"}}}},
        "/metadata/{keys}": {"get": {
            "summary": "/metadata", "description": "Metadata of one dataset",
            "parameters": [keys, *query(tp.MetadataQuery)],
            "responses": {"200": {"description": "bounds, convex_hull, valid_percentage, range, mean, stdev, "
                                                 "percentiles (1..99), metadata, keys"},
                          "404": {"description": "No dataset found"}}}},
        "/metadata": {"post": {
            "summary": "/metadata (many)",
            "description": "Metadata of up to 100 datasets: body {\"keys\": [[k1, k2, ...], ...]}",
            "parameters": query(tp.MetadataQuery),
            "requestBody": {"content": {"application/json": {"schema": {
                "type": "object", "properties": {"keys": {"type": "array", "items": {
                    "type": "array", "items": {"type": "string"}}}}}}}},
            "responses": {"200": {"description": "list of metadata"}, "400": {"description": "invalid body"},
                          "404": {"description": "No dataset found"}}}},
        "/colormap": {"get": {
            "summary": "/colormap", "description": "Values and RGBA colours of a colour bar",
            "parameters": query(tp.ColormapQuery),
            "responses": {"200": {"description": '{"colormap": [{"value", "rgba"}]}'}}}},
        "/palette/{keys}": {"get": {
            "summary": "/palette", "description": "Colour table of the dataset's band 1 (not a Terracotta route; "
                                                  "leafmap-tiles connect draws categories with it)",
            "parameters": [keys],
            "responses": {"200": {"description": '{"palette": [{"value", "rgba"}] or null}'},
                          "404": {"description": "No dataset found"}}}},
        "/singleband/{keys}/{tile_z}/{tile_x}/{tile_y}.png": {"get": {
            "summary": "/singleband (tile)", "parameters": [keys, *_XYZ, *single], "responses": _PNG}},
        "/singleband/{keys}/preview.png": {"get": {
            "summary": "/singleband (preview)", "parameters": [keys, *single], "responses": _PNG}},
        **_tile_routes("rgb", "Three datasets (differing in the last key) as red, green, blue", some, rgb),
        **_tile_routes("compute", "One band computed from datasets v1..v5 (differing in the last key)",
                       some, compute),
        "/swagger.json": {"get": {
            "summary": "/swagger.json", "description": "This OpenAPI document",
            "responses": {"200": {"description": "OpenAPI 3 JSON"}}}},
        "/apidoc": {"get": {
            "summary": "/apidoc", "description": "A page listing the routes of /swagger.json",
            "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}}}},
        "/health": {"get": {
            "summary": "/health", "description": "Liveness of this server process (for load balancers)",
            "responses": {"200": {"description": '{"status": "ok", "pid", "renders": scheduler counters}'}}}},
    }
    return {
        "openapi": "3.0.2",
        "info": {"title": "leafmap_tiles (Terracotta-compatible API)", "version": _version(),
                 "description": "Terracotta's HTTP API served by leafmap_tiles"},
        "servers": [{"url": ""}],
        "paths": paths,
    }


APIDOC_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>API documentation</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:60em;color:#222}
h2{border-bottom:1px solid #ccc;padding-bottom:.2em}code{background:#f3f3f3;padding:0 .2em}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}
</style></head><body>
<h1 id="title">API documentation</h1><p id="desc"></p><div id="routes">Loading /swagger.json ...</div>
<script>
fetch("swagger.json").then(r => r.json()).then(spec => {
  document.getElementById("title").textContent = spec.info.title + " " + spec.info.version;
  document.getElementById("desc").textContent = spec.info.description || "";
  const root = document.getElementById("routes"); root.textContent = "";
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const h = document.createElement("h2"); h.textContent = method.toUpperCase() + " " + path; root.appendChild(h);
      if (op.description) { const p = document.createElement("p"); p.textContent = op.description; root.appendChild(p); }
      if (op.parameters && op.parameters.length) {
        const t = document.createElement("table");
        t.innerHTML = "<tr><th>parameter</th><th>in</th><th>required</th><th>description</th></tr>";
        for (const prm of op.parameters) {
          const tr = document.createElement("tr");
          for (const v of [prm.name, prm.in, prm.required ? "yes" : "", prm.description || ""]) {
            const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
          }
          t.appendChild(tr);
        }
        root.appendChild(t);
      }
    }
  }
});
</script></body></html>
"""

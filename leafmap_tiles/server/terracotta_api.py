"""Terracotta's HTTP API on Starlette, answering as Terracotta 0.10 answers.

Routes (``{keys}`` are key values separated by ``/``, in key order)::

    GET  /keys                                   key names and descriptions
    GET  /datasets?<key>=<v>|[v1,v2]&limit&page&order_by&ascending
    GET  /metadata/{keys}?columns=[...]           metadata of one dataset
    POST /metadata?columns=[...]                  {"keys": [[...], ...]} -> list
    GET  /singleband/{keys}/{z}/{x}/{y}.png       ?colormap&stretch_range&explicit_color_map&tile_size
    GET  /singleband/{keys}/preview.png
    GET  /rgb[/{some_keys}]/{z}/{x}/{y}.png      ?r&g&b&r_range&g_range&b_range&tile_size
    GET  /rgb[/{some_keys}]/preview.png
    GET  /compute[/{some_keys}]/{z}/{x}/{y}.png  ?expression&v1..v5&stretch_range&colormap&tile_size
    GET  /compute[/{some_keys}]/preview.png
    GET  /colormap?stretch_range&colormap&num_values
    GET  /swagger.json, /apidoc

Only datasets that the key store lists are read: a URL names key values, never a
path.  Errors are JSON ``{"message": ..., "error": <class name>}`` with the status of
:data:`leafmap_tiles.server.errors.STATUS`, on a connection that stays open: 400 for
any bad input (Terracotta answers some of them with 500), 404 for an unknown
dataset, 500 with a message naming the dataset (never the file path) when a listed
file cannot be read, 502/504 when its remote host is unreachable or too slow.
Handlers run in a thread pool; the store, the rio-tiler readers (one per worker
thread) and the metadata cache are safe to use from all of them.

Differences from Terracotta are listed in ``docs/terracotta.md``; the rendering
itself is :mod:`leafmap_tiles.render.terracotta`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from leafmap_tiles.errors import (
    AuthenticationError,
    DatasetNotFoundError,
    InvalidKeyError,
    InvalidSourceError,
    LeafmapTilesError,
    SourceNotFoundError,
    SourceTimeoutError,
    SourceUnreachableError,
    StoreError,
    StyleError,
)
from leafmap_tiles.render import RenderEngine
from leafmap_tiles.render import expression as tc_expression
from leafmap_tiles.render import terracotta as tcr
from leafmap_tiles.server.errors import ErrorMiddleware, http_exception_handler, read_body

log = logging.getLogger("leafmap_tiles.server.terracotta")

MAX_POST_METADATA_KEYS = 100
MAX_TILE_SIDE = 2048
MAX_ZOOM = 30
MAX_INT = 2**53  # limit, page: larger values cannot be an SQL LIMIT/OFFSET
MAX_KEY_LENGTH = 1024
METADATA_TTL = 10.0
DEFAULT_LIMIT = 100
_PERCENTILE = re.compile(r"^p\d+$")
_TRUE = {"t", "true", "on", "y", "yes", "1"}
_FALSE = {"f", "false", "off", "n", "no", "0"}


class BadRequest(StyleError):
    """Invalid query parameters or body (HTTP 400)."""


class UnreadableDataset(LeafmapTilesError):
    """A dataset listed in the store whose file cannot be read (HTTP 500)."""


def _dataset_error(keys, exc: LeafmapTilesError) -> LeafmapTilesError:
    """What the client is told when the file of dataset ``keys`` failed: the same
    class for a remote host that is slow, unreachable or refuses access (504, 502,
    401), :class:`UnreadableDataset` (500) for a missing or corrupt file; the
    message names the dataset, never the file."""
    name = "/".join(keys)
    log.debug("dataset %s cannot be read: %s", name, exc)
    if isinstance(exc, SourceTimeoutError):
        return SourceTimeoutError(f"dataset {name}: its remote host did not answer in time; try again later")
    if isinstance(exc, SourceUnreachableError):
        return SourceUnreachableError(f"dataset {name}: its remote host cannot be reached; try again later")
    if isinstance(exc, AuthenticationError):
        return AuthenticationError(f"dataset {name}: its remote host refused access (credentials of the server)")
    return UnreadableDataset(f"dataset {name} cannot be read (its file is missing or corrupt)")


# --------------------------------------------------------------------------- parsing


def _first_params(request: Request) -> dict[str, str]:
    """Query parameters; for a repeated name the first value counts (as in Flask)."""
    out: dict[str, str] = {}
    for k, v in request.query_params.multi_items():
        out.setdefault(k, v)
    return out


def _json_param(params: dict, name: str) -> Any:
    val = params.get(name)
    if val is None or val == "":
        return None
    try:
        return json.loads(val)
    except (ValueError, RecursionError):
        raise BadRequest(f"Could not decode value {val[:100]} for {name} as JSON") from None


def _number(value: Any, name: str) -> float:
    try:
        ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(float(value))
    except OverflowError:  # an integer beyond float range
        ok = False
    if not ok:
        raise BadRequest(f"{name}: {str(value)[:40]} is not a finite number")
    return float(value)


def _range_param(params: dict, name: str, *, allow_percentile: bool = True, allow_null: bool = True):
    """A JSON ``[min, max]``; items are numbers, ``null`` (metadata range) or ``"pN"``."""
    val = _json_param(params, name)
    if val is None:
        return None
    if not isinstance(val, list) or len(val) != 2:
        raise BadRequest(f"{name} must be a JSON list of 2 values, e.g. [0, 1], got {params[name]}")
    out = []
    for item in val:
        if item is None and allow_null:
            out.append(None)
        elif isinstance(item, str) and allow_percentile:
            if not _PERCENTILE.match(item) or int(item[1:]) > 100:
                raise BadRequest(f"{name}: percentile format is `p<digits>` with 0 <= digits <= 100, got {item!r}")
            out.append(item)
        else:
            out.append(_number(item, name))
    return out


def _tile_size(params: dict) -> tuple[int, int]:
    val = _json_param(params, "tile_size")
    if val is None:
        return (256, 256)
    if (
        not isinstance(val, list)
        or len(val) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in val)
    ):
        raise BadRequest(f"tile_size must be a JSON list of 2 integers, e.g. [256, 256], got {params['tile_size']}")
    if not all(1 <= v <= MAX_TILE_SIDE for v in val):
        raise BadRequest(f"tile_size values must be between 1 and {MAX_TILE_SIDE}, got {val}")
    return (val[0], val[1])


def _colormap_name(params: dict, *, allow_explicit: bool) -> str | None:
    name = params.get("colormap")
    if name is None or name == "":
        return None
    if name == "explicit" and allow_explicit:
        return name
    if name.lower() not in tcr.available_colormaps() or name != name.lower():
        raise BadRequest(f"colormap: must be one of the names listed by /swagger.json (lower case), got {name!r}")
    return name


def _explicit_map(params: dict) -> list[tuple[float, tuple[int, int, int, int]]]:
    val = _json_param(params, "explicit_color_map")
    if not isinstance(val, dict) or not val:
        raise BadRequest('explicit_color_map must be a non-empty JSON object, e.g. {"1": [255, 0, 0], "2": "#00ff00"}')
    if len(val) > 255:
        raise BadRequest("Explicit color map must contain less than 256 values")
    out = []
    for key, colour in val.items():
        try:
            value = float(key)
        except ValueError:
            raise BadRequest(f"explicit_color_map key {key!r} is not a number") from None
        if isinstance(colour, str):
            hexs = colour.lstrip("#")
            if not re.fullmatch(r"[0-9a-fA-F]{6}([0-9a-fA-F]{2})?", hexs):
                raise BadRequest(f"Could not decode value {colour} in explicit_color_map as hex string")
            rgba = tuple(int(hexs[i : i + 2], 16) for i in range(0, len(hexs), 2))
            rgba = rgba + (255,) * (4 - len(rgba))
        elif isinstance(colour, list) and len(colour) in (3, 4):
            comps = [_number(c, "explicit_color_map") for c in colour]
            if any(c < 0 or c > 255 for c in comps):
                raise BadRequest(f"explicit_color_map colour {colour} has a component outside 0..255")
            rgba = tuple(int(c) for c in comps) + (255,) * (4 - len(comps))
        else:
            raise BadRequest(f"explicit_color_map colour {colour!r} must be [r, g, b], [r, g, b, a] or '#rrggbb'")
        out.append((value, rgba))
    return out


def _bool(value: str, name: str) -> bool:
    low = value.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise BadRequest(f"{name}: not a valid boolean: {value!r}")


def _int(value: str, name: str, minimum: int = 0, maximum: int = MAX_INT) -> int:
    text = value.strip()
    if len(text) > 20 or not text.lstrip("+-").isdigit():
        raise BadRequest(f"{name}: not a valid integer (at most {maximum}): {value[:40]!r}")
    out = int(text)
    if out < minimum:
        raise BadRequest(f"{name}: must be greater than or equal to {minimum}, got {out}")
    if out > maximum:
        raise BadRequest(f"{name}: must be at most {maximum}, got {out}")
    return out


def _list_value(value: str) -> str | list[str]:
    if len(value) >= 2 and value[0] == "[" and value[-1] == "]":
        return [v.strip() for v in value[1:-1].split(",")]
    return value


def _split_keys(keys: str) -> list[str]:
    out = [k for k in keys.split("/") if k]
    if any(len(k) > MAX_KEY_LENGTH for k in out):
        raise InvalidKeyError(f"key values must be at most {MAX_KEY_LENGTH} characters long")
    return out


def _tile_address(request: Request) -> tuple[int, int, int]:
    p = request.path_params
    z, x, y = int(p["z"]), int(p["x"]), int(p["y"])
    if z > MAX_ZOOM:
        raise BadRequest(f"zoom level {z} is above the maximum {MAX_ZOOM}")
    if x >= 2**z or y >= 2**z:
        raise BadRequest(f"tile {z}/{x}/{y} does not exist (0 <= x, y < 2**z)")
    return z, x, y


# --------------------------------------------------------------------------- datasets


class _Datasets:
    """Key store access with a short-lived cache of ``(path, metadata)`` per dataset."""

    def __init__(self, store) -> None:
        from cachetools import LRUCache

        from leafmap_tiles.render.engine import _default_cache_entries

        self.store = store
        self._cache: LRUCache = LRUCache(max(16, _default_cache_entries()))
        self._lock = threading.Lock()

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(self.store.key_names)

    def lookup(self, keys: list[str]) -> tuple[str, dict]:
        """``(path, metadata)`` of the dataset with these key values."""
        names = self.key_names
        if len(keys) != len(names):
            raise InvalidKeyError(f"Got wrong number of keys (available keys: {list(names)})")
        tkeys = tuple(keys)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(tkeys)
        if hit is not None and now - hit[0] < METADATA_TTL:
            return hit[1], hit[2]
        found = self.store.get_datasets(dict(zip(names, keys)))
        if not found:
            raise DatasetNotFoundError(f"No dataset found for keys {dict(zip(names, keys))}")
        path = next(iter(found.values()))
        try:  # computed here for datasets ingested with --skip-metadata
            metadata = self.store.get_metadata(list(keys))
        except (SourceNotFoundError, InvalidSourceError, SourceTimeoutError, SourceUnreachableError,
                AuthenticationError) as exc:
            raise _dataset_error(keys, exc) from None
        with self._lock:
            self._cache[tkeys] = (now, path, metadata)  # an LRU: bounded
        return path, metadata


def _metadata_json(metadata: dict, key_names, keys, columns) -> dict:
    out = {
        "bounds": [float(v) for v in metadata["bounds"]],
        "convex_hull": metadata["convex_hull"],
        "valid_percentage": float(metadata["valid_percentage"]),
        "range": [float(v) for v in metadata["range"]],
        "mean": float(metadata["mean"]),
        "stdev": float(metadata["stdev"]),
        "percentiles": [float(v) for v in metadata["percentiles"]],
        "metadata": metadata["metadata"],
    }
    if columns:
        out = {c: out[c] for c in columns}
    out["keys"] = dict(zip(key_names, keys))
    return out


def _columns(params: dict) -> list[str] | None:
    val = _json_param(params, "columns")
    if val is None:
        return None
    allowed = ("bounds", "convex_hull", "valid_percentage", "range", "mean", "stdev", "percentiles", "metadata")
    if not isinstance(val, list) or not val or not all(isinstance(c, str) for c in val):
        raise BadRequest('columns must be a non-empty JSON list of column names, e.g. ["range", "mean"]')
    unknown = [c for c in val if c not in allowed]
    if unknown:
        raise BadRequest(f"unknown metadata column(s) {unknown}; available: {list(allowed)}")
    return val


# --------------------------------------------------------------------------- app


def _open_store(store_or_pattern, rgb_key: str | None):
    from leafmap_tiles import store as store_mod
    from leafmap_tiles.store.base import KeyStore

    if isinstance(store_or_pattern, KeyStore):
        return store_or_pattern, None
    text = os.fspath(store_or_pattern)
    if "{" in text:
        import tempfile

        fd, db = tempfile.mkstemp(suffix=".sqlite", prefix="leafmap_tiles_serve_")
        os.close(fd)
        os.unlink(db)
        ks = store_mod.open(db)
        result = ks.ingest(text, rgb_key=rgb_key, skip_metadata=True)
        if not result.inserted:
            raise StoreError(f"no file matches the raster pattern {text!r}")
        return ks, db
    ks = store_mod.open(text)
    ks.get_keys()  # fails early for a missing or foreign database
    return ks, None


def create_terracotta_app(store_or_pattern, *, rgb_key: str | None = None, workers: int | None = None) -> Starlette:
    """Starlette app answering Terracotta's HTTP API for a key store.

    Args:
        store_or_pattern: a :class:`~leafmap_tiles.store.KeyStore`, the path or URL
            of a key store database, or a raster pattern such as
            ``"rasters/{sensor}_{date}_{band}.tif"`` (ingested into a temporary
            SQLite database without metadata; metadata is computed on first use, as
            ``terracotta serve -r`` does).
        rgb_key: with a pattern, the key moved last (the one ``/rgb`` varies).
        workers: threads that read tiles (default ``max(4, 3 * cores)``).

    Raises:
        StoreError: the database does not exist or is not a Terracotta database,
            or the pattern matches no file.
    """
    store, temp_db = _open_store(store_or_pattern, rgb_key)
    datasets = _Datasets(store)
    engine = RenderEngine()
    pool = ThreadPoolExecutor(
        max_workers=workers or int(os.environ.get("LEAFMAP_TILES_WORKERS", 0)) or max(4, 3 * (os.cpu_count() or 2)),
        thread_name_prefix="tc-tile",
    )

    from leafmap_tiles.server.app import default_deadlines
    from leafmap_tiles.server.scheduler import ClientGoneError, Scheduler

    renders = Scheduler(pool._max_workers, default_deadlines()[0], name="tc-render")
    engine.background = renders.submit_background  # decimated levels built ahead (local files)

    async def run(fn, *args):
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    async def run_tile(request: Request, work):
        """A tile render: newest first, dropped if the client left, 503 past the
        deadline, fair across datasets (:mod:`leafmap_tiles.server.scheduler`)."""
        try:  # RenderDeadlineError: 503 with Retry-After (leafmap_tiles.server.errors)
            return png(await renders.run(request.path_params.get("keys", ""), work, request=request))
        except ClientGoneError:
            return JSONResponse({"message": "the client closed the connection before the tile was rendered",
                                 "error": "ClientGone"}, status_code=503)

    def png(body: bytes) -> Response:
        return Response(body, media_type="image/png")

    def read(path: str, keys, bounds, shape, preserve_values=False):
        try:
            return tcr.read_band1(engine, path, bounds, shape, preserve_values=preserve_values)
        except tcr.OutsideData:
            raise
        except LeafmapTilesError as exc:
            raise _dataset_error(keys, exc) from None

    # ------------------------------------------------------------ metadata routes
    async def keys_route(request: Request):
        def work():
            return [
                {"key": k, **({"description": d} if d else {})} for k, d in store.get_keys().items()
            ]

        return JSONResponse({"keys": await run(work)})

    async def datasets_route(request: Request):
        params = _first_params(request)
        limit = _int(params.pop("limit"), "limit") if "limit" in params else DEFAULT_LIMIT
        page = _int(params.pop("page"), "page") if "page" in params else 0
        ascending = _bool(params.pop("ascending"), "ascending") if "ascending" in params else True
        order_by = params.pop("order_by", None)
        order = None
        if order_by:
            v = _list_value(order_by)
            order = v if isinstance(v, list) else [s.strip() for s in v.split(",") if s.strip()]
        where = {k: _list_value(v) for k, v in params.items()}

        def work():
            found = store.get_datasets(where or None, page=page, limit=limit, order_by=order, ascending=ascending)
            names = datasets.key_names
            return [dict(zip(names, k)) for k in found]

        return JSONResponse({"limit": limit, "page": page, "datasets": await run(work)})

    async def metadata_route(request: Request):
        columns = _columns(_first_params(request))
        keys = _split_keys(request.path_params["keys"])

        def work():
            _, md = datasets.lookup(keys)
            return _metadata_json(md, datasets.key_names, keys, columns)

        return JSONResponse(await run(work))

    async def multiple_metadata_route(request: Request):
        columns = _columns(_first_params(request))
        raw = await read_body(request)
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            raise BadRequest("Request body must be a JSON object") from None
        if not isinstance(body, dict):
            raise BadRequest("Request body must be a JSON object")
        unknown = set(body) - {"keys"}
        if unknown:
            raise BadRequest(f"unknown field(s) in request body: {sorted(unknown)}")
        ds = body.get("keys")
        if not isinstance(ds, list) or not all(
            isinstance(k, list) and all(isinstance(v, str) for v in k) for k in ds
        ):
            raise BadRequest('"keys" must be a list of lists of key values, e.g. {"keys": [["a", "b"]]}')
        if len(ds) > MAX_POST_METADATA_KEYS:
            raise BadRequest(
                f"Maximum number of keys exceeded ({MAX_POST_METADATA_KEYS}). "
                "This limit can be configured in the server settings."
            )

        def work():
            out = []
            for keys in ds:
                _, md = datasets.lookup(keys)
                out.append(_metadata_json(md, datasets.key_names, keys, columns))
            return out

        return JSONResponse(await run(work))

    async def colormap_route(request: Request):
        params = _first_params(request)
        if "stretch_range" not in params:
            raise BadRequest("stretch_range: Missing data for required field.")
        rng = _range_param(params, "stretch_range", allow_percentile=False, allow_null=False)
        if rng is None:
            raise BadRequest("stretch_range: Missing data for required field.")
        cmap = _colormap_name(params, allow_explicit=False)
        num = _int(params["num_values"], "num_values", minimum=1) if "num_values" in params else 255
        if num > 10000:
            raise BadRequest("num_values must be at most 10000")
        return JSONResponse({"colormap": tcr.colorbar(rng, cmap, num)})

    # ------------------------------------------------------------ tiles
    async def singleband_route(request: Request):
        keys = _split_keys(request.path_params["keys"])
        params = _first_params(request)
        xyz = _tile_address(request) if "z" in request.path_params else None
        shape = _tile_size(params)
        stretch = _range_param(params, "stretch_range")
        cmap = _colormap_name(params, allow_explicit=True)
        if params.get("color_transform"):
            raise BadRequest("color_transform is not supported by this server")
        explicit = None
        if cmap == "explicit":
            if not params.get("explicit_color_map"):
                raise BadRequest("colormap: explicit_color_map argument must be given for colormap=explicit")
            explicit = _explicit_map(params)
            cmap = None
        elif params.get("explicit_color_map"):
            raise BadRequest("explicit_color_map: explicit_color_map can only be given for colormap=explicit")

        def work():
            path, md = datasets.lookup(keys)
            bounds = None
            if xyz is not None:
                z, x, y = xyz
                if not tcr.tile_exists(md["bounds"], z, x, y):
                    return tcr.empty_png(shape)
                bounds = tcr.tile_bounds(z, x, y)
            lo, hi = tcr.stretch_range(stretch, md)
            try:
                data = read(path, keys, bounds, shape, preserve_values=explicit is not None)
            except tcr.OutsideData:
                return tcr.empty_png(shape)
            if explicit is not None:
                return tcr.explicit_png(data, explicit)
            return tcr.singleband_png(tcr.to_index(data, lo, hi), cmap)

        return await run_tile(request, work)

    def _some_keys(request: Request) -> list[str]:
        some = _split_keys(request.path_params.get("keys", ""))
        n = len(datasets.key_names)
        if len(some) != n - 1:
            raise BadRequest(f"must specify all keys except last one ({n - 1} key value(s), got {len(some)})")
        return some

    async def rgb_route(request: Request):
        params = _first_params(request)
        xyz = _tile_address(request) if "z" in request.path_params else None
        shape = _tile_size(params)
        missing = [c for c in ("r", "g", "b") if not params.get(c)]
        if missing:
            raise BadRequest(f"{', '.join(missing)}: Missing data for required field.")
        ranges = [_range_param(params, f"{c}_range") for c in ("r", "g", "b")]
        if params.get("color_transform"):
            raise BadRequest("color_transform is not supported by this server")
        some = await run(_some_keys, request)

        def work():
            bands = []
            looked = [datasets.lookup(some + [params[c]]) for c in ("r", "g", "b")]
            for (path, md), c, rng_override in zip(looked, ("r", "g", "b"), ranges):
                lo, hi = tcr.stretch_range(rng_override, md)
                if hi < lo:
                    raise BadRequest(f"{c}_range: Upper stretch bound must be higher than lower bound")
                bands.append((path, md, lo, hi))
            if xyz is not None:
                z, x, y = xyz
                if not any(tcr.tile_exists(md["bounds"], z, x, y) for _, md in looked):
                    return tcr.empty_png(shape)
            read_bands = []
            for (path, md, lo, hi), c in zip(bands, ("r", "g", "b")):
                bounds = None
                if xyz is not None:
                    z, x, y = xyz
                    if not tcr.tile_exists(md["bounds"], z, x, y):
                        read_bands.append(None)
                        continue
                    bounds = tcr.tile_bounds(z, x, y)
                try:
                    read_bands.append(read(path, some + [params[c]], bounds, shape))
                except tcr.OutsideData:
                    read_bands.append(None)
            if all(d is None for d in read_bands):
                return tcr.empty_png(shape)
            fills = [engine.reader(path).dataset.nodata for path, _, _, _ in bands]
            return tcr.rgb_png(tcr.rgb_channels(read_bands, [(lo, hi) for _, _, lo, hi in bands], shape, fills))

        return await run_tile(request, work)

    async def compute_route(request: Request):
        params = _first_params(request)
        xyz = _tile_address(request) if "z" in request.path_params else None
        shape = _tile_size(params)
        expr = params.get("expression")
        if not expr:
            raise BadRequest("expression: Missing data for required field.")
        if "stretch_range" not in params:
            raise BadRequest("stretch_range: Missing data for required field.")
        rng = _range_param(params, "stretch_range", allow_percentile=False, allow_null=False)
        if rng is None:
            raise BadRequest("stretch_range: Missing data for required field.")
        if not rng[1] > rng[0]:
            raise BadRequest("stretch_range: Upper stretch bounds must be larger than lower bounds")
        cmap = _colormap_name(params, allow_explicit=False)
        _, used = tc_expression.parse(expr)
        if not used:
            raise BadRequest("expression does not use any operand v1..v5, so it does not return an array")
        operands = {f"v{i}": params[f"v{i}"] for i in range(1, 6) if params.get(f"v{i}")}
        missing = sorted(used - set(operands))
        if missing:
            raise BadRequest(f"expression uses {', '.join(missing)} but no key value was given for it")
        if not operands:
            raise BadRequest("give at least one operand v1..v5 (the last key's value of a dataset)")
        some = await run(_some_keys, request)

        def work():
            looked = {v: datasets.lookup(some + [k]) for v, k in operands.items()}
            bounds = None
            if xyz is not None:
                z, x, y = xyz
                if not any(tcr.tile_exists(md["bounds"], z, x, y) for _, md in looked.values()):
                    return tcr.empty_png(shape)
                bounds = tcr.tile_bounds(z, x, y)
            arrays = {}
            import numpy as np

            for v, (path, md) in looked.items():
                try:
                    arrays[v] = read(path, some + [operands[v]], bounds, shape)
                except tcr.OutsideData:
                    arrays[v] = np.ma.masked_all(shape, dtype="float64")
            result = tc_expression.evaluate(expr, arrays)
            return tcr.singleband_png(tcr.to_index(result, rng[0], rng[1]), cmap)

        return await run_tile(request, work)

    # ------------------------------------------------------------ spec
    async def swagger_route(request: Request):
        from leafmap_tiles.server.terracotta_spec import openapi

        return JSONResponse(openapi(tcr.available_colormaps()))

    async def apidoc_route(request: Request):
        from leafmap_tiles.server.terracotta_spec import APIDOC_HTML

        return HTMLResponse(APIDOC_HTML)

    async def health(request: Request):
        # pid: which worker process answered (serve --processes N, replicas)
        return JSONResponse({"status": "ok", "pid": os.getpid(), "renders": renders.stats()})

    tile = "{z:int}/{x:int}/{y:int}.png"
    routes = [
        Route("/keys", keys_route),
        Route("/datasets", datasets_route),
        Route("/metadata/{keys:path}", metadata_route),
        Route("/metadata", multiple_metadata_route, methods=["POST"]),
        Route("/colormap", colormap_route),
        Route("/singleband/{keys:path}/preview.png", singleband_route),
        Route("/singleband/{keys:path}/" + tile, singleband_route),
        Route("/rgb/preview.png", rgb_route),
        Route("/rgb/" + tile, rgb_route),
        Route("/rgb/{keys:path}/preview.png", rgb_route),
        Route("/rgb/{keys:path}/" + tile, rgb_route),
        Route("/compute/preview.png", compute_route),
        Route("/compute/" + tile, compute_route),
        Route("/compute/{keys:path}/preview.png", compute_route),
        Route("/compute/{keys:path}/" + tile, compute_route),
        Route("/swagger.json", swagger_route),
        Route("/apidoc", apidoc_route),
        Route("/health", health),
    ]
    from starlette.exceptions import HTTPException

    # every failure is answered by ErrorMiddleware (status table of leafmap_tiles.server.errors),
    # inside the CORS middleware so that error answers carry its headers too
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "POST"]),
            Middleware(ErrorMiddleware, logger=log),
        ],
        exception_handlers={HTTPException: http_exception_handler},
    )
    app.state.store = store
    app.state.engine = engine
    app.state.pool = pool
    app.state.renders = renders
    app.state.temp_db = temp_db
    return app

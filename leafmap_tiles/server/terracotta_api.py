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

Three layers, as in Terracotta (``handlers/`` and ``server/``) and TiTiler
(dependencies): the query of each route is a dataclass of
:mod:`leafmap_tiles.server.terracotta_params` (validation, and the OpenAPI spec of
``/swagger.json``); the work is a plain function of
:mod:`leafmap_tiles.render.terracotta_handlers` (PNG bytes) or
:mod:`leafmap_tiles.store.terracotta_handlers` (JSON); the routes here only join the
two, on the thread pool.  Differences from Terracotta are listed in
``docs/terracotta.md``; the rendering itself is :mod:`leafmap_tiles.render.terracotta`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from leafmap_tiles.errors import BadRequestError
from leafmap_tiles.render import RenderEngine
from leafmap_tiles.render import terracotta as tcr
from leafmap_tiles.render import terracotta_handlers as tiles
from leafmap_tiles.server.errors import ErrorMiddleware, http_exception_handler, read_body
from leafmap_tiles.server.terracotta_params import (
    ColormapQuery,
    ComputeQuery,
    DatasetsQuery,
    MetadataBody,
    MetadataQuery,
    RgbQuery,
    SinglebandQuery,
    split_keys,
    tile_address,
)
from leafmap_tiles.store import terracotta_handlers as meta

log = logging.getLogger("leafmap_tiles.server.terracotta")


def _first_params(request: Request) -> dict[str, str]:
    """Query parameters; for a repeated name the first value counts (as in Flask)."""
    out: dict[str, str] = {}
    for k, v in request.query_params.multi_items():
        out.setdefault(k, v)
    return out


def _xyz(request: Request) -> tuple[int, int, int] | None:
    """The tile address of a tile route; None for ``preview.png``."""
    p = request.path_params
    return tile_address(int(p["z"]), int(p["x"]), int(p["y"])) if "z" in p else None


def _png(body: bytes) -> Response:
    return Response(body, media_type="image/png")


def create_terracotta_app(store_or_pattern, *, rgb_key: str | None = None, workers: int | None = None,
                          resampling: str | None = None, reprojection: str | None = None,
                          processes: int = 1) -> Starlette:
    """Starlette app answering Terracotta's HTTP API for a key store.

    Args:
        store_or_pattern: a :class:`~leafmap_tiles.store.KeyStore`, the path or URL
            of a key store database, or a raster pattern such as
            ``"rasters/{sensor}_{date}_{band}.tif"`` (ingested into a temporary
            SQLite database without metadata; metadata is computed on first use, as
            ``terracotta serve -r`` does).
        rgb_key: with a pattern, the key moved last (the one ``/rgb`` varies).
        workers: threads that render tiles of local files (default
            :func:`leafmap_tiles.settings.serve_local_workers`: ``LEAFMAP_TILES_WORKERS``,
            else the cores shared out among ``processes``, at least 1).  Tiles of
            URLs (``http(s)://``, ``s3://``) render on a pool of their own,
            :func:`leafmap_tiles.settings.serve_workers`' default (``max(4, 3 * cores)``)
            or ``workers`` if more, since their reads wait on the network.
        resampling, reprojection: how tiles are read (Terracotta's
            ``RESAMPLING_METHOD`` / ``REPROJECTION_METHOD``; default
            :func:`leafmap_tiles.settings.tile_methods`: ``average``, ``bilinear``).
        processes: worker processes of this server on the machine
            (``serve --processes N``), for the default of ``workers``.

    Raises:
        StoreError: the database does not exist or is not a Terracotta database,
            or the pattern matches no file.
    """
    from leafmap_tiles import settings as settings_mod
    from leafmap_tiles.server.scheduler import Scheduler

    settings = settings_mod.current()  # read once, when the app is made
    methods = settings_mod.tile_methods(resampling, reprojection, settings)
    store, temp_db = meta.open_store(store_or_pattern, rgb_key)
    cache = meta.DatasetCache(store)
    engine = RenderEngine()
    from leafmap_tiles.server.gdalenv import is_remote

    # local tiles are CPU-bound: one thread per core of this process's share (more only
    # contend for the GIL: benchmarks/README.md); tiles of URLs wait on the network
    local_workers = workers or settings_mod.serve_local_workers(processes, settings)
    remote_workers = max(local_workers, settings_mod.serve_workers(settings_mod.Settings()))
    # store queries (metadata, /datasets) and other blocking work that is not a render
    pool = ThreadPoolExecutor(max_workers=remote_workers, thread_name_prefix="tc-tile")
    renders = Scheduler(local_workers, settings.tile_deadline, name="tc-render")
    remote_renders = Scheduler(remote_workers, settings.tile_deadline, name="tc-render-remote")
    engine.background = renders.submit_background  # decimated levels built ahead (local files)

    async def run(fn, *args: Any, **kwargs: Any):
        return await asyncio.get_running_loop().run_in_executor(pool, lambda: fn(*args, **kwargs))

    async def dataset(keys: list[str]) -> tuple[str, dict[str, Any]]:
        """``(path, metadata)``: from the cache at once when it is fresh, else asked of
        the store on a thread (metadata computed on first use for --skip-metadata
        datasets, outside the render deadline: that is for rendering)."""
        return cache.fresh(keys) or await run(cache.lookup, keys)

    async def render(request: Request, paths: list[str], fn, *args: Any, **kwargs: Any) -> Response:
        """A tile render of the datasets at ``paths``: newest first, dropped if the client
        left (ClientGoneError, 503), 503 with Retry-After past the deadline
        (RenderDeadlineError), fair across datasets (:mod:`leafmap_tiles.server.scheduler`);
        on the remote pool when any of them is a URL."""
        sched = remote_renders if any(is_remote(p) for p in paths) else renders
        body = await sched.run(request.path_params.get("keys", ""), lambda: fn(*args, **kwargs), request=request)
        return _png(body)

    def some_keys(request: Request) -> list[str]:
        """All key values but the last (``/rgb``, ``/compute``)."""
        some = split_keys(request.path_params.get("keys", ""))
        n = len(cache.key_names)
        if len(some) != n - 1:
            raise BadRequestError(f"must specify all keys except last one ({n - 1} key value(s), got {len(some)})")
        return some

    # ------------------------------------------------------------ JSON routes
    async def keys_route(request: Request):
        return JSONResponse({"keys": await run(meta.keys, store)})

    async def datasets_route(request: Request):
        q = DatasetsQuery.parse(_first_params(request))
        found = await run(meta.datasets, cache, q.where, limit=q.limit, page=q.page, order_by=q.order_by,
                          ascending=q.ascending)
        return JSONResponse({"limit": q.limit, "page": q.page, "datasets": found})

    async def metadata_route(request: Request):
        q = MetadataQuery.parse(_first_params(request))
        keys = split_keys(request.path_params["keys"])
        return JSONResponse(await run(meta.metadata, cache, keys, q.columns))

    async def multiple_metadata_route(request: Request):
        q = MetadataQuery.parse(_first_params(request))
        body = MetadataBody.parse(await read_body(request))
        return JSONResponse(await run(lambda: [meta.metadata(cache, k, q.columns) for k in body.keys]))

    async def palette_route(request: Request):
        # not Terracotta's: the file's colour table, for `leafmap-tiles connect` (categories)
        keys = split_keys(request.path_params["keys"])
        return JSONResponse({"palette": await run(tiles.palette, engine, cache.lookup, keys)})

    async def colormap_route(request: Request):
        q = ColormapQuery.parse(_first_params(request))
        return JSONResponse({"colormap": tcr.colorbar(q.stretch_range, q.colormap, q.num_values)})

    # ------------------------------------------------------------ tiles
    async def singleband_route(request: Request):
        keys = split_keys(request.path_params["keys"])
        xyz = _xyz(request)
        q = SinglebandQuery.parse(_first_params(request))
        path, _ = await dataset(keys)  # before the tile (metadata first, outside the deadline)
        return await render(request, [path], tiles.singleband, engine, cache.lookup, keys, xyz,
                            stretch_range=q.stretch_range, colormap=q.colormap,
                            explicit_color_map=q.explicit_color_map, tile_size=q.tile_size, methods=methods)

    async def rgb_route(request: Request):
        xyz = _xyz(request)
        q = RgbQuery.parse(_first_params(request))
        some = await run(some_keys, request)
        paths = [(await dataset(some + [last]))[0] for _, last, _ in q.bands]  # metadata first
        return await render(request, paths, tiles.rgb, engine, cache.lookup, some, xyz, bands=q.bands,
                            tile_size=q.tile_size, methods=methods)

    async def compute_route(request: Request):
        xyz = _xyz(request)
        q = ComputeQuery.parse(_first_params(request))
        some = await run(some_keys, request)
        paths = [(await dataset(some + [k]))[0] for k in q.operands.values()]  # metadata first
        return await render(request, paths, tiles.compute, engine, cache.lookup, some, xyz, expression=q.expression,
                            operands=q.operands, stretch_range=q.stretch_range, colormap=q.colormap,
                            tile_size=q.tile_size, methods=methods)

    # ------------------------------------------------------------ spec
    async def swagger_route(request: Request):
        from leafmap_tiles.server.terracotta_spec import openapi

        return JSONResponse(openapi(tcr.available_colormaps()))

    async def apidoc_route(request: Request):
        from leafmap_tiles.server.terracotta_spec import APIDOC_HTML

        return HTMLResponse(APIDOC_HTML)

    async def health(request: Request):
        # pid: which worker process answered (serve --processes N, replicas)
        return JSONResponse({"status": "ok", "pid": os.getpid(), "renders": renders.stats(),
                             "remote_renders": remote_renders.stats()})

    tile = "{z:int}/{x:int}/{y:int}.png"
    routes = [
        Route("/keys", keys_route),
        Route("/datasets", datasets_route),
        Route("/metadata/{keys:path}", metadata_route),
        Route("/metadata", multiple_metadata_route, methods=["POST"]),
        Route("/colormap", colormap_route),
        Route("/palette/{keys:path}", palette_route),
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
    app.state.remote_renders = remote_renders
    app.state.temp_db = temp_db
    app.state.methods = methods
    return app

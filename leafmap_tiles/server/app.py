"""The session tile server (Starlette).

Routes (``{token}`` is the session token, unguessable, shown only to the kernel and
the browser; admin routes also need header ``X-Leafmap-Tiles-Key``)::

    GET    /health                                   -> {"status": "ok"}
    POST   /{token}/sources          (admin)          register {"path", "style"?, "defaults"?, "protected"?, "id"?}
    DELETE /{token}/sources/{id}     (admin)          release
    POST   /{token}/gdal             (admin)          {"credentials"?, "clear_hosts"?}: GDAL credentials
    POST   /{token}/background       (admin)          {"owner", "ids"}: sources rendered after all others
    POST   /{token}/colormaps        (admin)          register {"colormap": spec} -> {"id": "cm:<hex>", "kind", "n"}
    GET    /{token}/tiles/{id}/{z}/{x}/{y}.{png|jpg|webp}?<style>[&v=<version>]
    GET    /{token}/info/{id}?<style>
    GET    /{token}/point/{id}?lon=&lat=&<style>
    POST   /{token}/points                            batch {"lon", "lat", "layers": [{"id", "style"}]}
    POST   /{token}/statistics/{id}                   area statistics {"geometry", "style"?, "percentiles"?,
                                                      "scale"?, "offset"?, "stats"?} (see leafmap_tiles.render.zonal)

Tile caching: a tile URL whose ``v`` equals the source's current version (see
:func:`tile_version`; the register and info answers carry it) names bytes that never
change, so it is sent with a long ``max-age``; other URLs get ``no-cache`` + ETag
(revalidated on every use); protected sources ``no-store``.

The JSON bodies are the TypedDicts of :mod:`leafmap_tiles.protocol`; each body, tile
address and ``lon``/``lat`` is parsed by :mod:`leafmap_tiles.server.session_params`
before anything is read or changed: a malformed request is
:class:`~leafmap_tiles.errors.BadRequestError`, a well-formed style that is invalid
for the source :class:`~leafmap_tiles.errors.StyleError` (both 400).

Errors are JSON ``{"message": ..., "error": <class name>}`` with the status of
:data:`leafmap_tiles.server.errors.STATUS` (400 bad input, 401 provider refused,
403 bad token/key, 404 unknown id or route, 502/504 unreachable/slow remote, 503 a
render past its deadline, 500 a registered file that became unreadable, or a bug), on
a connection that stays open; never a traceback, and no path or URL except in answers
to the kernel-only admin routes (which quote what the kernel sent).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import math
import os
import threading
from typing import Any, cast

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from leafmap_tiles import settings as settings_mod
from leafmap_tiles._paths import is_remote_path
from leafmap_tiles.errors import (
    BadRequestError,
    LeafmapTilesError,
    RenderDeadlineError,
    StyleError,
    UnknownSourceError,
)
from leafmap_tiles.protocol import (
    ColormapAnswer,
    InfoAnswer,
    PointAnswer,
    PointFailure,
    PointResult,
    PointsAnswer,
    PointValues,
    Registration,
    RegistrationAnswer,
    is_mosaic,
    members,
)
from leafmap_tiles.render import RenderEngine, parse_style
from leafmap_tiles.render.colormaps import colormap_id, resolve_colormap
from leafmap_tiles.render.engine import file_signature
from leafmap_tiles.render.style import band_labels, style_to_params
from leafmap_tiles.server import gdalenv, session_params
from leafmap_tiles.server.session_params import (
    BackgroundBody,
    ColormapBody,
    GdalBody,
    PointsBody,
    RegistrationBody,
    StatisticsBody,
    lonlat,
    tile_address,
)
from leafmap_tiles.server.errors import (
    ErrorMiddleware,
    http_exception_handler,
    mark_registering,
    mark_sources,
    read_body,
    scrub,
)
from leafmap_tiles.server.registry import Registry
from leafmap_tiles.server.scheduler import Scheduler

log = logging.getLogger("leafmap_tiles.server")

MEDIA = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


async def json_object(request: Request) -> dict[str, Any]:
    """The request body (at most :data:`leafmap_tiles.server.errors.MAX_BODY` bytes) as
    a JSON object; :class:`BadRequestError` for anything else."""
    return session_params.json_object(await read_body(request))


def _source_names(src) -> dict[str, str]:
    """``{path: "source <id>"}`` for each file of a source, and its file name (GDAL's
    messages name a local file by its name alone, "shade copy.tif: ..."): the error path
    shows the id to the browser, never the path or a part of it."""
    paths = members(src.path)
    out = {}
    for p in paths:
        out[p] = f"source {src.id}"
        if not is_remote_path(p):
            out[os.path.abspath(p)] = out[os.path.basename(p)] = f"source {src.id}"
    return out


def default_workers() -> int:
    """Threads rendering tiles of local files (:func:`leafmap_tiles.settings.session_workers`)."""
    return settings_mod.session_workers()


def default_deadlines() -> tuple[float, float]:
    """Seconds a tile may take, from the request's arrival, before the server answers
    503 instead: ``LEAFMAP_TILES_TILE_DEADLINE`` for local files (default 5),
    ``LEAFMAP_TILES_REMOTE_TILE_DEADLINE`` for URLs (default 20); see
    :mod:`leafmap_tiles.settings`."""
    s = settings_mod.current()
    return s.tile_deadline, s.remote_tile_deadline


IMMUTABLE = "public, max-age=31536000, immutable"


def tile_version(path) -> str | None:
    """Version of a source's bytes for tile URLs: a hash of the (mtime, size, inode) of
    every local file of ``path``; None when any member is a URL (its state is unknown
    here, so its tiles are revalidated instead)."""
    if any(isinstance(p, str) and is_remote_path(p) for p in members(path)):
        return None  # an S3 object's version can change under the same URL: revalidated
    sig = file_signature(path)
    if sig is None or (is_mosaic(path) and any(s is None for s in sig)):
        return None
    return hashlib.sha1(repr(sig).encode()).hexdigest()[:12]


def create_app(token: str, admin_key: str, workers: int | None = None, sources: list[Registration] | None = None,
               colormaps: list | None = None, deadline: float | None = None,
               remote_deadline: float | None = None) -> Starlette:
    """Build the ASGI app for one session.  ``token`` guards every session route,
    ``admin_key`` (sent only by the kernel) guards registration.  ``sources`` are
    registrations (:class:`~leafmap_tiles.protocol.Registration`, each with its ``id``)
    and ``colormaps`` colormap specifications (see :mod:`leafmap_tiles.render.colormaps`)
    restored after a restart, trusted without re-validation of the files (one of
    another shape is left out, and logged).

    Local files render on ``workers`` threads (plus one kept for other sources while
    one source is busy); remote sources (URLs) on a separate, larger set, so a slow
    server cannot stall the tiles of local files.  Tiles are taken newest first, a tile
    whose browser request was aborted is never rendered, and one not rendered within
    ``deadline`` (``remote_deadline`` for URLs) seconds answers 503 JSON
    (:mod:`leafmap_tiles.server.scheduler`; defaults: :func:`default_deadlines`)."""
    engine = RenderEngine()
    registry = Registry()
    n = workers or default_workers()
    local_deadline, far_deadline = default_deadlines()
    pool = Scheduler(n, deadline if deadline is not None else local_deadline, name="tile")
    remote_pool = Scheduler(max(16, 2 * n), remote_deadline if remote_deadline is not None else far_deadline,
                            name="tile-remote")
    engine.background = pool.submit_background  # decimated levels built ahead (local files)
    generation = {"n": 0}
    for restored in sources or []:
        try:
            reg = RegistrationBody.parse(restored)
        except BadRequestError as exc:
            log.warning("a registration restored after a restart is left out: %s", exc)
            continue
        if reg.id is not None:
            registry.add(reg.path, reg.defaults, reg.id, reg.protected, style=reg.style)
            gdalenv.cover(reg.path)
    # registered colormaps: id -> ResolvedColormap; tile URLs carry the short id
    cmaps: dict[str, object] = {}
    for spec in colormaps or []:
        try:
            cmaps[colormap_id(spec)] = resolve_colormap(spec)
        except StyleError:
            pass

    async def run(fn, *args, remote: bool = False, key="kernel"):
        """A kernel call (registration, info, points): before any tile, no deadline."""
        return await (remote_pool if remote else pool).run(key, fn, *args, deadline=None, urgent=True)

    def is_remote(path) -> bool:
        return gdalenv.is_remote(path)  # also a VRT whose members are URLs

    def check_token(request: Request) -> None:
        if not hmac.compare_digest(request.path_params.get("token", ""), token):
            raise HTTPException(403, "invalid session token")

    def check_admin(request: Request) -> None:
        check_token(request)
        if not hmac.compare_digest(request.headers.get("x-leafmap-tiles-key", ""), admin_key):
            raise HTTPException(403, "this route is for the kernel only")

    def source_of(request: Request):
        sid = request.path_params["source_id"]
        src = registry.get(sid)
        if src is None:
            raise UnknownSourceError(f"unknown source id {sid[:64]!r}")
        mark_sources(request.scope, _source_names(src))
        return src

    from cachetools import LRUCache

    styles: LRUCache = LRUCache(engine.cache_entries)  # parsed once per style, not per tile
    styles_lock = threading.Lock()

    def style_of(src, params: dict, info):
        merged = {**src.defaults, **{k: v for k, v in params.items() if k not in ("lon", "lat")}}
        # parse_style depends on the query and on the band count/dtype of the source only
        key = json.dumps([merged, info.count, info.visible_count, info.dtype, info.has_palette],
                         sort_keys=True, default=str)
        with styles_lock:
            style = styles.get(key)
        if style is None:
            style = parse_style(merged, info, cmaps)  # raises StyleError: bad styles are not cached
            with styles_lock:
                styles[key] = style
        return style

    async def health(request: Request):
        return JSONResponse({"status": "ok", "sources": len(registry.all()),
                             "renders": {"local": pool.stats(), "remote": remote_pool.stats()}})

    async def register(request: Request):
        check_admin(request)
        mark_registering(request.scope)
        reg = RegistrationBody.parse(await json_object(request))
        path, style_params, defaults = reg.path, reg.style, reg.defaults

        def work():
            engine.retry(path)  # a registration asks a host that failed before again
            gdalenv.cover(path)
            nodata = style_params.get("nodata", defaults.get("nodata"))
            probe_info = engine.info(path)  # validates the file (and reads a local file's blocks)
            for member in members(path):
                if is_remote_path(member):  # engine.info read the local files' blocks already
                    engine.check_readable(member)
            style = parse_style({**defaults, **style_params}, probe_info, cmaps)
            info = engine.info(path, style.nodata) if nodata is not None else probe_info
            stats = engine.statistics(path, style)  # reads an overview: truncated files fail here
            protected = reg.protected or gdalenv.protected(path)
            src = registry.add(path, defaults, reg.id, protected, style=style_params)
            return src, info, style, stats

        src, info, style, stats = await run(work, remote=is_remote(path))
        vmin, vmax = await run(engine.stretch, path, style, remote=is_remote(path))
        answer: RegistrationAnswer = {
            "id": src.id,
            "info": info.to_json(),
            "style": style_to_params(style),
            "statistics": stats,
            "stretch": {"vmin": list(vmin), "vmax": list(vmax)},
            "palette": engine.uses_palette(info, style),
            "version": tile_version(path),
        }
        return JSONResponse(answer)

    async def register_colormap(request: Request):
        check_admin(request)
        spec = ColormapBody.parse(await json_object(request)).colormap
        resolved = resolve_colormap(spec)  # StyleError -> 400: well-formed, but not colours
        cid = colormap_id(spec)
        cmaps[cid] = resolved
        answer: ColormapAnswer = {"id": cid, "kind": resolved.kind, "n": resolved.n or len(resolved.explicit or {})}
        return JSONResponse(answer)

    async def release(request: Request):
        check_admin(request)
        src = registry.remove(request.path_params["source_id"])
        if src is None:
            raise UnknownSourceError(f"unknown source id {request.path_params['source_id']!r}")
        if not any(s.path == src.path for s in registry.all()):
            engine.forget(src.path)
        return JSONResponse({"released": src.id})

    async def gdal(request: Request):
        check_admin(request)
        change = GdalBody.parse(await json_object(request)).change()
        await run(gdalenv.apply, change, [src.path for src in registry.all()])
        engine.invalidate_all()
        generation["n"] += 1
        return JSONResponse({"ok": True, "generation": generation["n"]})

    background: dict[str, set] = {}  # owner (e.g. a time slider) -> ids of its hidden frames

    late: dict[str, int] = {}
    late_lock = threading.Lock()

    async def set_background(request: Request):
        """Sources whose tiles render after all others: ``{"owner": str, "ids": [...]}``
        replaces that owner's set (an empty list clears it)."""
        check_admin(request)
        body = BackgroundBody.parse(await json_object(request))
        owner, ids = body.owner, body.ids
        if ids:
            background[owner] = set(ids)
        else:
            background.pop(owner, None)
        keys = set().union(*background.values()) if background else set()
        pool.set_background(keys)
        remote_pool.set_background(keys)
        return JSONResponse({"background": len(keys)})

    async def tile(request: Request):
        check_token(request)
        p = request.path_params
        z, x, y, fmt = tile_address(p["z"], p["x"], p["y"], p["fmt"])
        src = source_of(request)
        params = dict(request.query_params)
        version = params.pop("v", None)  # not a style parameter: the state of the file
        etag = '"' + hashlib.sha1(
            f"{src.id}|{generation['n']}|{file_signature(src.path)}|{z}/{x}/{y}.{fmt}|{sorted(params.items())}".encode()
        ).hexdigest()[:32] + '"'
        protected = src.protected or gdalenv.protected(src.path)
        # revalidated on every use (ETag: source, file state, style): a file rewritten at
        # the same path, or a new login, never shows stale tiles from the browser cache
        cache = "no-store" if protected else "no-cache"
        if not protected and version is not None and version == tile_version(src.path):
            cache = IMMUTABLE  # the URL names the file's current state: never stale
        if not protected and request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache})

        def work():
            info = engine.info(src.path, None)
            style = style_of(src, params, info)
            return engine.tile(src.path, style, z, x, y, fmt)

        sched = remote_pool if is_remote(src.path) else pool
        try:
            body = await sched.run(src.id, work, request=request)  # ClientGoneError: 503, not logged
        except RenderDeadlineError:
            with late_lock:  # the kernel's layer asks the browser to redraw (GET /late)
                late[src.id] = late.get(src.id, 0) + 1
            raise
        return Response(body, media_type=MEDIA[fmt], headers={"ETag": etag, "Cache-Control": cache})

    async def late_route(request: Request):
        """``{source id: tiles answered 503 past the render deadline}`` since start: a
        browser does not ask for such a tile again by itself (the kernel redraws)."""
        check_token(request)
        with late_lock:
            return JSONResponse(dict(late))

    async def info_route(request: Request):
        check_token(request)
        src = source_of(request)
        params = dict(request.query_params)

        def work() -> InfoAnswer:
            base = engine.info(src.path, None)
            style = style_of(src, params, base)
            info = engine.info(src.path, style.nodata)
            d: dict[str, Any] = dict(info.to_json())
            d.pop("path", None)  # never give the browser a path or URL
            d.update(id=src.id, version=tile_version(src.path), statistics=engine.statistics(src.path, style))
            return cast(InfoAnswer, d)  # SourceInfoJSON without path, with id, version, statistics

        return JSONResponse(await run(work, remote=is_remote(src.path)))

    def _point(src, params, lon, lat) -> PointValues:
        base = engine.info(src.path, None)
        # the style the source was registered with (e.g. its nodata=) unless the query
        # gives another: a point answers what the layer's tiles show
        registered = dict(src.style)
        if "indexes" in params or "expression" in params:  # the query picks its own bands
            registered.pop("indexes", None)
            registered.pop("expression", None)
        style = style_of(src, {**registered, **params}, base)
        info = engine.info(src.path, style.nodata)
        out = engine.point(src.path, style, lon, lat)
        out["nodata"] = None if info.nodata is None or math.isnan(info.nodata) else info.nodata
        out["scales"] = info.scales
        out["offsets"] = info.offsets
        return out

    async def point(request: Request):
        check_token(request)
        src = source_of(request)
        params = dict(request.query_params)
        lon = lonlat(params.get("lon"), "lon")
        lat = lonlat(params.get("lat"), "lat")
        values = await run(_point, src, params, lon, lat, remote=is_remote(src.path))
        answer: PointAnswer = {**values, "id": src.id, "lon": lon, "lat": lat}
        return JSONResponse(answer)

    async def points(request: Request):
        check_token(request)
        body = PointsBody.parse(await json_object(request))
        lon, lat = body.lon, body.lat
        resolved = []
        for sid, params in body.layers:
            src = registry.get(sid) if isinstance(sid, str) else None
            if src is None:
                raise UnknownSourceError(f"unknown source id {str(sid)[:64]!r}")
            mark_sources(request.scope, _source_names(src))
            resolved.append((src, params))

        def work() -> list[PointResult | PointFailure]:
            out: list[PointResult | PointFailure] = []
            for src, params in resolved:
                try:
                    out.append({**_point(src, params, lon, lat), "id": src.id})
                except LeafmapTilesError as exc:  # one failing source must not hide the others
                    out.append({"inside": None, "values": None, "error": scrub(str(exc), _source_names(src)),
                                "kind": type(exc).__name__, "id": src.id})
            return out

        remote = any(is_remote(src.path) for src, _ in resolved)
        answer: PointsAnswer = {"lon": lon, "lat": lat, "results": await run(work, remote=remote)}
        return JSONResponse(answer)

    async def area_statistics(request: Request):
        """Statistics over a polygon in physical units: the body's ``scale``/``offset``
        (a layer's own, e.g. STAC ``raster:scale``) for every band, else the file's
        scale/offset tags for plain bands (none for an expression), as the inspector
        applies them."""
        from leafmap_tiles.render import zonal

        check_token(request)
        src = source_of(request)
        body = StatisticsBody.parse(await json_object(request))
        geometry, percentiles, wanted, params = body.geometry, list(body.percentiles), body.stats, body.style
        given = {name: v for name, v in (("scale", body.scale), ("offset", body.offset)) if v is not None}

        def work():
            base = engine.info(src.path, None)
            registered = dict(src.style)
            if "indexes" in params or "expression" in params:
                registered.pop("indexes", None)
                registered.pop("expression", None)
            style = style_of(src, {**registered, **params}, base)
            info = engine.info(src.path, style.nodata)
            indexes = style.indexes or tuple(i for i in range(1, info.count + 1) if i != info.alpha_index)
            if given:  # the layer's own scale/offset, for every output band
                k = len(band_labels(style, indexes)) if style.expression else len(indexes)
                scales, offsets = [given.get("scale", 1.0)] * k, [given.get("offset", 0.0)] * k
            elif style.expression:
                scales = offsets = None
            else:
                scales = [info.scales[i - 1] if i - 1 < len(info.scales) else 1.0 for i in indexes]
                offsets = [info.offsets[i - 1] if i - 1 < len(info.offsets) else 0.0 for i in indexes]
            return zonal.area_statistics(engine, src.path, style, geometry, percentiles, scales, offsets, wanted)

        out = await run(work, remote=is_remote(src.path), key=src.id)
        out["id"] = src.id
        return JSONResponse(out)

    routes = [
        Route("/health", health),
        Route("/{token}/sources", register, methods=["POST"]),
        Route("/{token}/sources/{source_id}", release, methods=["DELETE"]),
        Route("/{token}/gdal", gdal, methods=["POST"]),
        Route("/{token}/background", set_background, methods=["POST"]),
        Route("/{token}/colormaps", register_colormap, methods=["POST"]),
        Route("/{token}/tiles/{source_id}/{z}/{x}/{y}.{fmt}", tile),
        Route("/{token}/late", late_route),
        Route("/{token}/info/{source_id}", info_route),
        Route("/{token}/point/{source_id}", point),
        Route("/{token}/points", points, methods=["POST"]),
        Route("/{token}/statistics/{source_id}", area_statistics, methods=["POST"]),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:  # the render threads end with the app
            pool.close()
            remote_pool.close()

    # every failure is answered by ErrorMiddleware (inside Starlette's ServerErrorMiddleware,
    # which would re-raise to uvicorn and so close the keep-alive connection)
    app = Starlette(
        routes=routes,
        middleware=[Middleware(ErrorMiddleware, logger=log)],
        exception_handlers={HTTPException: http_exception_handler},
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.registry = registry
    app.state.pool = pool
    app.state.remote_pool = remote_pool
    return app

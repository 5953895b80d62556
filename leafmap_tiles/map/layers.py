"""``RasterTileLayer``: an ``ipyleaflet.TileLayer`` that knows its tile-server source."""

from __future__ import annotations

import os

import ipyleaflet
import numpy as np

from leafmap_tiles.client import get_server, prepare_source
from leafmap_tiles.errors import StyleError, UnknownSourceError
from leafmap_tiles.map.style_params import colormap_param, index_list, number_list


class RasterTileLayer(ipyleaflet.TileLayer):
    """A TileLayer served by our tile server.

    Python attributes (not synced to the browser): ``source_id``; ``style`` (the
    canonical style parameters in the tile URL); ``info`` (the server's description:
    ``bounds`` (west, south, east, north) EPSG:4326, ``crs``, ``dtype``, ``count``,
    ``nodata``, ``scales``/``offsets`` ...); ``stretch`` (``{"vmin": [...], "vmax":
    [...]}`` actually used); ``colormap`` (what the user gave); ``scale``/``offset``
    (physical units for colorbars, e.g. from STAC ``raster:scale``);
    ``release_on_remove`` (release the source when the layer leaves its map);
    ``version`` (the state of the source's files, part of the URL so that browsers may
    cache tiles; None for remote sources).

    ``bounds`` (the ipyleaflet option) is the source's footprint: the browser asks only
    for tiles that intersect it.
    """

    def __init__(self, *, server, source_id: str, style: dict, info: dict, stretch: dict | None = None,
                 colormap=None, statistics=None, palette: bool = False, version: str | None = None,
                 **kwargs):
        kwargs.setdefault("bounds", leaflet_bounds(info.get("bounds")))
        super().__init__(**kwargs)
        self.version = version
        self.server = server
        self.source_id = source_id
        self.style = dict(style)
        self.info = info
        self.stretch = stretch or {}
        self.colormap = colormap
        #: the registration's overview statistics: a plain list, one dict per band
        self.band_statistics: list = list(statistics or [])
        self.palette = palette
        self.release_on_remove = True
        self.scale = None
        self.offset = None
        self.metadata: dict = {}
        self.registration = server.registration(source_id) if server is not None else None
        self.colorbars: list = []  # colorbars drawn from this layer (redrawn by restyle)
        self.class_names: dict | None = None  # {value: name} of categorical data
        self.band_labels: dict | None = None  # {"b1": "red", ...}: names the inspector shows
        # tiles answered 503 (render past the deadline) stay holes in Leaflet: redraw
        self._late_seen = server.late_tiles().get(source_id, 0) if server is not None else 0
        self._late_redraws = 0
        self.on_load(self._redraw_late_tiles)

    MAX_LATE_REDRAWS = 5  # redraws in a row for tiles that missed the deadline
    #: seconds before each of those redraws: at once, then backing off (the server's
    #: 503 says ``Retry-After: 1``), ~15 s in all before a still-overloaded server is
    #: left alone until the view changes
    LATE_REDRAW_DELAYS = (0.0, 1.0, 2.0, 4.0, 8.0)

    def _redraw_late_tiles(self, **_event) -> None:
        """On the browser's ``load`` event (every tile of the view answered or failed):
        if the server answered some of this layer's tiles 503 since the last look, ask
        the browser to redraw the layer (tiles it has come from its cache; the missing
        ones are asked again), after :attr:`LATE_REDRAW_DELAYS`, at most
        :attr:`MAX_LATE_REDRAWS` times in a row (a load with no new late tile resets the
        count)."""
        if self.server is None:
            return
        n = self.server.late_tiles().get(self.source_id, 0)
        new_late, self._late_seen = n > self._late_seen, n
        if not new_late:
            self._late_redraws = 0  # the view loaded whole
        elif self._late_redraws < self.MAX_LATE_REDRAWS:
            delays = self.LATE_REDRAW_DELAYS
            delay = float(delays[min(self._late_redraws, len(delays) - 1)]) if delays else 0.0
            self._late_redraws += 1
            self._schedule_redraw(delay)

    def _schedule_redraw(self, delay: float) -> None:
        """Redraw now, or in ``delay`` s from a one-shot timer thread (one at a time per
        layer; cancelled by :meth:`release`)."""
        import threading

        old = getattr(self, "_late_timer", None)
        if old is not None:
            old.cancel()
            self._late_timer = None
        if delay <= 0:
            self.redraw()
            return
        t = threading.Timer(delay, self._late_redraw_due)
        t.daemon = True
        t.name = "leafmap_tiles-late-redraw"
        self._late_timer = t
        t.start()

    def _late_redraw_due(self) -> None:
        self._late_timer = None
        if self.server is not None and not self.server.closed and self.server.is_registered(self.source_id):
            self.redraw()

    def restyle(self, colormap=None, vmin=None, vmax=None, indexes=None, expression=None, **style) -> None:
        """Change how this layer is drawn, in place (same layer, new tile URL): any of
        ``colormap``, ``vmin``/``vmax``, ``indexes``, ``expression``, ``stretch``,
        ``nodata``, ``resampling`` (as for ``Map.add_raster``; for a STAC layer the
        expression names its assets).  What is not given stays; a new ``indexes`` or
        ``expression`` drops the old ``vmin``/``vmax`` unless given.  Colorbars drawn
        from this layer are redrawn.  Raises ``StyleError`` (the layer unchanged)."""
        from leafmap_tiles.map.restyle import restyle

        restyle(self, colormap=colormap, vmin=vmin, vmax=vmax, indexes=indexes, expression=expression, **style)

    def refresh_url(self) -> None:
        """Rebuild the URL (after the server had to move to another port, or a style change)."""
        self.url = self.server.tile_url(self.source_id, self.style, version=self.version)

    def refresh(self) -> bool:
        """Show the file's current content after it was rewritten at the same path: asks
        the server for the source's version and, when it changed, gives the layer a new
        URL (the browser swaps each tile once its new image has loaded).  Returns whether
        the URL changed.  Tile URLs carry the version so that browsers may cache them."""
        version = self.server.info(self.source_id).get("version")
        if version == self.version:
            return False
        self.version = version
        self.refresh_url()
        return True

    def release(self) -> None:
        """Release the server-side source; tiles of this layer answer 404 afterwards
        (until the layer is added to a map again)."""
        timer = getattr(self, "_late_timer", None)
        if timer is not None:
            timer.cancel()
            self._late_timer = None
        if self.server is not None and not self.server.closed:
            self.server.release(self.source_id)

    def copy(self, name: str | None = None) -> "RasterTileLayer":
        """A new layer of the same source and style with a registration of its own
        (its own source id), so that releasing either layer leaves the other's tiles
        working: e.g. one side of a split map made from a time slider's date outlives
        the slider.  ``name``: the copy's name (default: this layer's).  Raises
        ``UnknownSourceError`` when this layer's registration is gone, or the error
        :meth:`TileServer.register` raises when the source can no longer be read
        (e.g. ``SourceNotFoundError``), before anything is added."""
        reg = self.registration or self.server.registration(self.source_id)
        if reg is None:
            raise UnknownSourceError(f"layer {self.name!r} has no registration to copy (released?)")
        out = self.server.register(reg["path"], self.style, defaults=reg.get("defaults"),
                                   protected=bool(reg.get("protected")))
        try:
            url = self.server.tile_url(out["id"], out["style"], version=out.get("version"))
        except Exception:
            self.server.release(out["id"])
            raise
        layer = RasterTileLayer(
            server=self.server, source_id=out["id"], style=out["style"], info=out["info"],
            stretch=out.get("stretch"), statistics=out.get("statistics"), palette=out.get("palette", False),
            colormap=self.colormap, version=out.get("version"), url=url, name=name or self.name,
            opacity=self.opacity, visible=True, attribution=self.attribution, max_zoom=self.max_zoom,
            max_native_zoom=self.max_native_zoom, tile_size=self.tile_size, zoom_offset=self.zoom_offset)
        layer.scale, layer.offset = self.scale, self.offset
        layer.metadata = dict(self.metadata)
        layer.class_names = self.class_names
        layer.band_labels = self.band_labels
        return layer

    def ensure_registered(self) -> None:
        """Register the source again (same id and URL) if it was released."""
        if self.server is not None and not self.server.closed and not self.server.is_registered(self.source_id):
            self.server.reregister(self.registration)

    def point(self, lon: float, lat: float) -> dict:
        """This layer's pixel at (``lon``, ``lat``) EPSG:4326 degrees, as its tiles show
        it (same bands or expression, same ``nodata``): the tile server's answer
        ``{"inside": bool, "values": [raw value or None for nodata, ...], "bands":
        ["b1", ...], "nodata", "scales", "offsets", ...}``.  Any longitude is the
        meridian it names on every copy of the world (e.g. -540 = 180).  Raises
        ``BadRequestError`` for a latitude beyond +-90 or a non-finite number,
        ``UnknownSourceError`` once released."""
        return self.server.point(self.source_id, lon, lat, self.style)

    @property
    def statistics(self) -> "AreaStatistics":
        """Area statistics: ``layer.statistics(geometry, percentiles=(2, 98), band=1)``
        is :meth:`area_statistics` (the exact statistics over a polygon).

        The registration's overview statistics (one dict per band: ``min``, ``max``,
        ``mean``, ``std``, ``p2``, ``p98``, ``valid_percent``, for the default stretch)
        are the plain list :attr:`band_statistics`.  ``layer.statistics[0]`` (the
        list form of earlier versions) still gives them, with a ``DeprecationWarning``."""
        return AreaStatistics(self)

    @statistics.setter
    def statistics(self, value) -> None:  # the list form of earlier versions
        self.band_statistics = list(value or [])

    def area_statistics(self, geometry, percentiles=(2, 98), band: int = 1) -> dict:
        """Statistics of this layer's values over a polygon, in physical units
        (also ``layer.statistics(geometry, ...)``).

        Args:
            geometry: a GeoJSON-like ``Polygon``/``MultiPolygon`` dict (or a
                ``Feature`` holding one), or a shapely geometry, in EPSG:4326 degrees.
            percentiles: percentiles (0..100) to compute besides the median.
            band: which output band (1-based among the layer's ``indexes``; an
                expression has one) to describe.

        Returns ``{"count", "mean", "median", "min", "max", "std", "p2", "p98", ...,
        "band", "pixels"}``: ``count`` valid pixels, the rest in physical units (the
        layer's ``scale``/``offset``, else the file's scale/offset tags for a plain
        band), ``None`` when no valid pixel is inside; ``std`` is the population
        standard deviation (ddof=0); percentiles use numpy's ``linear`` method;
        ``pixels`` counts the pixels inside whether valid or not.

        Pixel rule: the source's own pixels at full resolution; a pixel is inside when
        its **centre** is inside the polygon (``rasterio.features.geometry_mask``,
        ``all_touched=False``), and each such pixel weighs 1; the polygon's edges are
        straight in lon/lat (edges longer than 0.05 degrees are densified before the
        projection onto the source's grid); nodata (the layer's
        ``nodata=``, else the file's per-band mask), NaN and, for an expression,
        non-finite results are left out.  A mosaic takes each pixel from its first
        file with data.  Computed by the tile server (one request).

        Raises ``BadRequestError`` for a geometry that is not a polygon in EPSG:4326
        or bad percentiles, or a polygon larger than ``LEAFMAP_TILES_MAX_AREA_PIXELS``
        source pixels (default 50 million); ``UnknownSourceError`` once released.
        """
        from leafmap_tiles.errors import BadRequestError

        if isinstance(band, bool) or not isinstance(band, (int, np.integer)) or band < 1:
            raise BadRequestError(f"band must be a 1-based band number, got {band!r}")
        out = self.server.statistics(self.source_id, geometry_json(geometry), self.style, percentiles,
                                     scale=self.scale, offset=self.offset)
        stats = out["statistics"]
        if band > len(stats):
            raise BadRequestError(f"band {band} of a layer with {len(stats)} output band(s)")
        return {**stats[band - 1], "band": out["bands"][band - 1] if band <= len(out["bands"]) else f"b{band}",
                "pixels": out["pixels"]}

    @property
    def bounds_4326(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in EPSG:4326 (west > east across the antimeridian)."""
        return tuple(self.info["bounds"])  # type: ignore[return-value]


class AreaStatistics:
    """What ``layer.statistics`` is: a callable, ``layer.statistics(geometry,
    percentiles=(2, 98), band=1)`` = :meth:`RasterTileLayer.area_statistics`.  It is not
    a list: the overview statistics are ``layer.band_statistics``.  Indexing, ``len``
    and iteration still reach that list (the form of earlier versions) with a
    ``DeprecationWarning``."""

    __slots__ = ("_layer",)

    def __init__(self, layer):
        self._layer = layer

    def __call__(self, geometry, percentiles=(2, 98), band: int = 1) -> dict:
        return self._layer.area_statistics(geometry, percentiles=percentiles, band=band)

    def _old_list(self) -> list:
        import warnings

        warnings.warn("layer.statistics is the area-statistics method, layer.statistics(geometry); the overview "
                      "statistics list is layer.band_statistics", DeprecationWarning, stacklevel=3)
        return self._layer.band_statistics

    def __getitem__(self, i):
        return self._old_list()[i]

    def __len__(self) -> int:
        return len(self._old_list())

    def __iter__(self):
        return iter(self._old_list())

    def __repr__(self) -> str:
        return (f"<area statistics of layer {getattr(self._layer, 'name', '')!r}: call with a polygon; "
                "overview statistics: layer.band_statistics>")


def geometry_json(geometry) -> dict:
    """A polygon given as a GeoJSON-like dict, a ``Feature`` or a shapely geometry (any
    object with ``__geo_interface__``), as the plain GeoJSON dict the tile server takes
    (EPSG:4326; checked by the server)."""
    from leafmap_tiles.errors import BadRequestError

    if hasattr(geometry, "__geo_interface__") and not isinstance(geometry, dict):
        geometry = geometry.__geo_interface__
    if not isinstance(geometry, dict):
        raise BadRequestError(f"geometry must be a GeoJSON-like polygon dict or a shapely geometry, "
                              f"not {type(geometry).__name__}")
    import json

    try:
        return json.loads(json.dumps(geometry))  # tuples -> lists; refuses what JSON cannot carry
    except (TypeError, ValueError) as exc:
        raise BadRequestError(f"geometry is not JSON-serialisable: {exc}") from None


def leaflet_bounds(bounds) -> list | None:
    """Leaflet's ``[[south, west], [north, east]]`` for (west, south, east, north)
    EPSG:4326 bounds; across the antimeridian (west > east) the latitude band over all
    longitudes (Leaflet compares wrapped tile bounds with one box of longitudes).  None
    when unknown or not finite."""
    import math

    if not bounds or len(bounds) != 4:
        return None
    w, s, e, n = (float(v) for v in bounds)
    if not all(math.isfinite(v) for v in (w, s, e, n)) or s > n:
        return None
    s, n = max(s, -90.0), min(n, 90.0)
    if w > e or e - w >= 360.0:
        return [[s, -180.0], [n, 180.0]]
    return [[s, w], [n, e]]


def mosaic_sources(source) -> list | None:
    """The paths/URLs (``str`` or ``os.PathLike``) of a ``source`` the user gave as a
    list or tuple of them (one mosaic, e.g. a :class:`~leafmap_tiles.protocol.Mosaic`),
    else None; the kernel makes them registration paths (``prepare_source``), the
    server a :class:`~leafmap_tiles.protocol.Mosaic`."""
    if isinstance(source, (list, tuple)) and source and all(isinstance(s, (str, os.PathLike)) for s in source):
        return list(source)
    return None


def default_layer_name(source) -> str:
    """File name without extension for paths/URLs, else a generic name."""
    several = mosaic_sources(source)
    if several is not None:
        source = several[0]
    if isinstance(source, (str, os.PathLike)):
        from leafmap_tiles import _paths

        text = _paths.from_file_url(os.fspath(source))  # a file:// URL: its file's name, unescaped
        name = text.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
        return os.path.splitext(name)[0] or "raster"
    if type(source).__name__ == "DataArray" and getattr(source, "name", None) is not None:
        return str(source.name)
    return {"ndarray": "array"}.get(type(source).__name__, type(source).__name__)


def make_raster_layer(server=None, source=None, *, indexes=None, colormap=None, vmin=None, vmax=None,
                      nodata=None, name=None, visible=True, opacity=1.0, attribution=None, defaults=None,
                      protected=False, scale=None, offset=None, **style) -> RasterTileLayer:
    """Register ``source`` with ``server`` (default: the kernel's shared tile server)
    and return a :class:`RasterTileLayer` for it, not yet on any map.

    ``source`` is anything :meth:`leafmap_tiles.Map.add_raster` takes, or a list of
    paths/URLs shown as one mosaic (each pixel from the first file that has data).
    ``scale``/``offset`` (e.g. STAC ``raster:scale``/``raster:offset``) are kept on the
    layer for colorbars and inspectors: physical value = DN * scale + offset.
    Raises the specific errors listed in ``add_raster`` before anything is registered.
    """
    server = server or get_server(start=True)
    crs = style.pop("crs", None)
    transform = style.pop("transform", None)
    expression = style.pop("expression", None)
    resampling = style.pop("resampling", None)
    tile_size = style.pop("tile_size", None)
    stretch = style.pop("stretch", None)
    if style:
        raise TypeError(f"unexpected style argument(s): {', '.join(sorted(style))}")
    indexes = index_list(indexes)
    if not isinstance(opacity, (int, float)) or isinstance(opacity, bool) or not 0.0 <= float(opacity) <= 1.0:
        raise StyleError(f"opacity must be a number in [0, 1], got {opacity!r}")
    if not isinstance(visible, (bool, np.bool_)):
        raise TypeError(f"visible must be True or False, got {visible!r}")
    if attribution is not None and not isinstance(attribution, str):
        raise TypeError(f"attribution must be a string, got {type(attribution).__name__}")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"layer name must be a string, got {type(name).__name__}")
    several = mosaic_sources(source)
    if several is not None:
        path = [prepare_source(s, server.tmpdir)[0] for s in several]
    else:
        path, _ = prepare_source(source, server.tmpdir, crs=crs, transform=transform, nodata=nodata)
    params = {
        "indexes": ",".join(str(i) for i in indexes) if indexes is not None else None,
        "expression": expression,
        "vmin": number_list(vmin, "vmin"),
        "vmax": number_list(vmax, "vmax"),
        "stretch": stretch,
        "colormap": colormap_param(colormap, server),
        "nodata": None if nodata is None else ("nan" if nodata != nodata else nodata),
        "resampling": resampling,
        "tile_size": tile_size,
    }
    params = {k: v for k, v in params.items() if v is not None}
    server.check_tile_url(params)  # tiles that could never load: refused before anything changes
    reg = server.register(path, params, defaults=defaults, protected=protected)
    try:
        url = server.tile_url(reg["id"], reg["style"], version=reg.get("version"))
    except StyleError:
        server.release(reg["id"])
        raise
    info = reg["info"]
    ts = int(reg["style"].get("tile_size", 256))
    layer = RasterTileLayer(
        server=server,
        source_id=reg["id"],
        style=reg["style"],
        info=info,
        stretch=reg.get("stretch"),
        statistics=reg.get("statistics"),
        palette=reg.get("palette", False),
        colormap=colormap,
        version=reg.get("version"),
        url=url,
        name=name or default_layer_name(source),
        opacity=float(opacity),
        visible=bool(visible),
        attribution=attribution,
        max_zoom=24,
        max_native_zoom=max(int(info.get("maxzoom", 18)) + (1 if ts == 256 else 0), 0),
        tile_size=ts,
        zoom_offset=-1 if ts == 512 else 0,
    )
    layer.scale = scale
    layer.offset = offset
    if protected:
        layer.metadata["protected"] = True
    return layer

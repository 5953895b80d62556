"""The bodies and path parts of the session app's routes (:mod:`leafmap_tiles.server.app`),
parsed and validated before anything is read or changed.

One frozen dataclass per JSON body, with exactly the fields of its TypedDict in
:mod:`leafmap_tiles.protocol` (``tests/server`` checks that they agree):
:class:`RegistrationBody` (:class:`~leafmap_tiles.protocol.Registration`),
:class:`ColormapBody`, :class:`GdalBody`, :class:`BackgroundBody` (the kernel-only
routes), :class:`PointsBody` and :class:`StatisticsBody`.  Each ``parse`` takes the decoded JSON and raises
:class:`~leafmap_tiles.errors.BadRequestError` (400) naming the field for any other
shape: a request that is malformed in itself.  A well-formed style that is invalid for
its source (an unknown colormap, ``vmin`` above ``vmax`` ...) is left to
:func:`leafmap_tiles.render.parse_style`, which raises
:class:`~leafmap_tiles.errors.StyleError`, as the Terracotta routes do
(:mod:`leafmap_tiles.server.terracotta_params`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Union

from leafmap_tiles import _paths
from leafmap_tiles.errors import BadRequestError
from leafmap_tiles.protocol import Credential, GdalChange, SourcePath, members, source_path

__all__ = [
    "FORMATS",
    "MAX_ZOOM",
    "BackgroundBody",
    "ColormapBody",
    "GdalBody",
    "PointsBody",
    "RegistrationBody",
    "StatisticsBody",
    "json_object",
    "lonlat",
    "tile_address",
]

#: Tile formats of ``/tiles/{id}/{z}/{x}/{y}.{fmt}`` and their GDAL/PIL driver.
FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP"}
MAX_ZOOM = 30
#: What a source id may be: it is a part of tile URLs (the server makes ``s<12 hex>``).
SOURCE_ID = re.compile(r"[A-Za-z0-9_.~-]{1,128}")

Body = Mapping[str, Any]


def _kind(value: object) -> str:
    """The JSON name of ``value``'s type, for messages."""
    if value == "":
        return "empty string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def json_object(raw: bytes) -> dict[str, Any]:
    """``raw`` (a request body) decoded as a JSON object; :class:`BadRequestError` for
    anything else (not JSON, not UTF-8, nested too deep, an array ...)."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequestError("request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequestError(f"request body must be a JSON object, not a JSON {_kind(body)}")
    return body


def _only(body: Body, fields: tuple[str, ...], what: str) -> None:
    unknown = sorted(set(body) - set(fields))
    if unknown:
        names = ", ".join(repr(u[:40]) for u in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise BadRequestError(f"{what}: unknown field(s) {names}; the fields are {', '.join(map(repr, fields))}")


def _style(body: Body, name: str) -> dict[str, Any]:
    """An optional JSON object of style parameters (null values dropped)."""
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequestError(f"{name!r} must be a JSON object of style parameters, not a JSON {_kind(value)}")
    return {k: v for k, v in value.items() if v is not None}


def _strings(body: Body, name: str, what: str) -> tuple[str, ...]:
    """An optional JSON array of non-empty strings (null: none)."""
    value = body.get(name)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise BadRequestError(f"{name!r} must be a JSON array of {what}, not a JSON {_kind(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise BadRequestError(f"{name}[{i}] must be a non-empty string ({what}), not a JSON {_kind(item)}")
    return tuple(value)


# --------------------------------------------------------------------------- path parts


def tile_address(z: str, x: str, y: str, fmt: str) -> tuple[int, int, int, str]:
    """``(z, x, y, driver)`` of the path parts of a tile URL: an existing XYZ tile
    (``z`` at most :data:`MAX_ZOOM`) and a format of :data:`FORMATS`
    (``"png"`` -> ``"PNG"``); :class:`BadRequestError` otherwise."""
    numbers = []
    for text in (z, x, y):
        if not (text.isascii() and text.isdigit() and len(text) <= 10):
            raise BadRequestError(f"malformed tile address: z, x, y must be integers, got {text[:20]!r}")
        numbers.append(int(text))
    zi, xi, yi = numbers
    if zi > MAX_ZOOM or xi >= 2**zi or yi >= 2**zi:
        raise BadRequestError(f"tile {zi}/{xi}/{yi} does not exist (0 <= x, y < 2**z, z <= {MAX_ZOOM})")
    driver = FORMATS.get(fmt.lower())
    if driver is None:
        raise BadRequestError(f"unsupported tile format {fmt[:20]!r}: use png, jpg or webp")
    return zi, xi, yi, driver


def lonlat(value: object, name: str) -> float:
    """``value`` (a query string or a JSON number) as degrees of EPSG:4326: any finite
    longitude (the map repeats the world east and west), a latitude within +-90;
    :class:`BadRequestError` naming ``name`` (``"lon"`` or ``"lat"``) otherwise."""
    try:
        # float() also takes other scripts' digits ("١" is 1): ASCII strings only
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) or (
                isinstance(value, str) and not value.isascii()):
            raise TypeError
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        raise BadRequestError(f"{name} must be a number in degrees (EPSG:4326), got {str(value)[:40]!r}") from None
    if not math.isfinite(v) or (name == "lat" and abs(v) > 90):
        raise BadRequestError(f"{name}={str(value)[:40]!r} is out of range")
    return v


# --------------------------------------------------------------------------- bodies


@dataclass(frozen=True)
class RegistrationBody:
    """``POST /{token}/sources`` (:class:`~leafmap_tiles.protocol.Registration`), also
    each registration a restarted server is given (``ServerConfig.sources``)."""

    path: SourcePath  # one path/URL, or a Mosaic of two or more
    style: dict[str, Any]  # null values dropped
    defaults: dict[str, Any]  # null values dropped
    protected: bool = False
    id: Union[str, None] = None  # None: the server makes one

    FIELDS = ("path", "style", "defaults", "protected", "id")

    @classmethod
    def parse(cls, body: Body) -> RegistrationBody:
        """The registration of ``body``; :class:`BadRequestError` for unknown fields,
        a ``path`` that is not a non-empty string or an array of them, a ``style`` or
        ``defaults`` that is not an object, a ``protected`` that is not a boolean, an
        ``id`` that is not a string of :data:`SOURCE_ID`;
        :class:`~leafmap_tiles.errors.InvalidSourceError` (400) for a URL that cannot
        be split into its parts (:func:`leafmap_tiles._paths.check_url`)."""
        _only(body, cls.FIELDS, "registration")
        raw = body.get("path")
        path = source_path(raw)  # several files: one mosaic
        if path is None:
            if isinstance(raw, list) and raw:
                i = next(i for i, p in enumerate(raw) if not (isinstance(p, str) and p))
                raise BadRequestError(f"path[{i}] must be a non-empty path/URL, not a JSON {_kind(raw[i])}")
            raise BadRequestError("'path' is required: a non-empty path/URL, or a list of them for a mosaic, "
                                  f"not a JSON {_kind(raw)}")
        for member in members(path):
            _paths.check_url(member)  # before its host is asked (credentials) or GDAL reads it
        if any(_paths.is_file_url(m) for m in members(path)):  # GDAL opens the file, not the URL
            files = [_paths.local_path(m) if _paths.is_file_url(m) else m for m in members(path)]
            path = source_path(files) or path
        protected = body.get("protected")
        if protected is not None and not isinstance(protected, bool):
            raise BadRequestError(f"'protected' must be true or false, not a JSON {_kind(protected)}")
        sid = body.get("id")
        if sid is not None and not (isinstance(sid, str) and SOURCE_ID.fullmatch(sid)):
            raise BadRequestError("'id' must be a source id (1 to 128 letters, digits, '_', '.', '~' or '-'), "
                                  f"got a JSON {_kind(sid)}")
        return cls(path, _style(body, "style"), _style(body, "defaults"), bool(protected), sid)


@dataclass(frozen=True)
class ColormapBody:
    """``POST /{token}/colormaps`` (:class:`~leafmap_tiles.protocol.ColormapRequest`)."""

    colormap: Union[list[Any], dict[str, Any]]

    @classmethod
    def parse(cls, body: Body) -> ColormapBody:
        """The colormap of ``body``: an array (colours) or an object (``{value:
        colour}`` or ``{"colors": [...]}``); whether its colours are valid is
        :func:`leafmap_tiles.render.colormaps.resolve_colormap`'s (StyleError)."""
        _only(body, ("colormap",), "colormap registration")
        spec = body.get("colormap")
        if not isinstance(spec, (list, dict)):
            raise BadRequestError("'colormap' is required: a list of colours, a {value: colour} map or a "
                                  "{\"colors\": [...]} table (names need no registration), "
                                  f"not a JSON {_kind(spec)}")
        return cls(spec)


@dataclass(frozen=True)
class GdalBody:
    """``POST /{token}/gdal`` (:class:`~leafmap_tiles.protocol.GdalChange`), also
    ``ServerConfig.gdal``: what :func:`leafmap_tiles.server.gdalenv.apply` does."""

    credentials: tuple[Credential, ...] = ()
    clear_hosts: tuple[str, ...] = ()

    @classmethod
    def parse(cls, body: Body) -> GdalBody:
        """The change of ``body``; :class:`BadRequestError` for unknown fields, a
        ``credentials`` that is not an array of ``{"host", "username", "password"}``
        strings (host non-empty), a ``clear_hosts`` that is not an array of host names."""
        _only(body, ("credentials", "clear_hosts"), "GDAL change")
        raw = body.get("credentials")
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            raise BadRequestError('"credentials" must be a JSON array of {"host", "username", "password"} '
                                  f"objects, not a JSON {_kind(raw)}")
        creds = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                raise BadRequestError(f'credentials[{i}] must be an object {{"host", "username", "password"}}, '
                                      f"not a JSON {_kind(item)}")
            _only(item, ("host", "username", "password"), f"credentials[{i}]")
            for name in ("host", "username", "password"):
                value = item.get(name)
                if not isinstance(value, str) or (name == "host" and not value):
                    raise BadRequestError(f"credentials[{i}].{name} must be a {'non-empty ' if name == 'host' else ''}"
                                          f"string, not a JSON {_kind(value)}")
            creds.append(Credential(host=item["host"], username=item["username"], password=item["password"]))
        return cls(tuple(creds), _strings(body, "clear_hosts", "host names"))

    def change(self) -> GdalChange:
        """As the protocol's JSON (what :func:`leafmap_tiles.server.gdalenv.apply` reads)."""
        return {"credentials": list(self.credentials), "clear_hosts": list(self.clear_hosts)}


@dataclass(frozen=True)
class BackgroundBody:
    """``POST /{token}/background`` (:class:`~leafmap_tiles.protocol.BackgroundRequest`)."""

    owner: str
    ids: tuple[str, ...] = ()  # empty (or null): clear the owner's set

    @classmethod
    def parse(cls, body: Body) -> BackgroundBody:
        """The owner and source ids of ``body``; :class:`BadRequestError` for unknown
        fields, an ``owner`` that is not a non-empty string, ``ids`` that are not an
        array of source ids."""
        _only(body, ("owner", "ids"), "background")
        owner = body.get("owner")
        if not isinstance(owner, str) or not owner:
            raise BadRequestError(f"'owner' is required: a non-empty string (e.g. a time slider's id), "
                                  f"not a JSON {_kind(owner)}")
        return cls(owner, _strings(body, "ids", "source ids"))


@dataclass(frozen=True)
class PointsBody:
    """``POST /{token}/points`` (:class:`~leafmap_tiles.protocol.PointsRequest`)."""

    lon: float
    lat: float
    #: ``(id, style)`` per layer: the id as sent (one that is not a registered id's
    #: string answers 404, as an unknown id), the style as tile URL parameters (strings)
    layers: tuple[tuple[Any, dict[str, str]], ...] = ()

    @classmethod
    def parse(cls, body: Body) -> PointsBody:
        """The place and layers of ``body``; :class:`BadRequestError` for a ``lon`` or
        ``lat`` that is not a number in range (:func:`lonlat`), ``layers`` that are not
        an array of objects ``{"id", "style"}``, a ``style`` that is not an object."""
        _only(body, ("lon", "lat", "layers"), "points")
        lon = lonlat(body.get("lon"), "lon")
        lat = lonlat(body.get("lat"), "lat")
        layers = body.get("layers") or []
        if not isinstance(layers, list) or not all(isinstance(item, dict) for item in layers):
            raise BadRequestError("'layers' must be a list of objects {\"id\": ..., \"style\": {...}}")
        for i, item in enumerate(layers):
            _only(item, ("id", "style"), f"layers[{i}]")
        return cls(lon, lat, tuple((item.get("id"), {k: str(v) for k, v in _style(item, "style").items()})
                                   for item in layers))


@dataclass(frozen=True)
class StatisticsBody:
    """``POST /{token}/statistics/{id}`` (:class:`~leafmap_tiles.protocol.StatisticsRequest`):
    statistics of a source over a polygon."""

    geometry: dict[str, Any]  # a GeoJSON Polygon/MultiPolygon in EPSG:4326, as a plain dict
    percentiles: tuple[float, ...] = ()  # each in [0, 100]
    stats: Union[tuple[str, ...], None] = None  # names of render.zonal.STATS; None: all
    #: the style as tile URL parameters (strings; null values dropped)
    style: dict[str, str] = field(default_factory=dict)
    scale: Union[float, None] = None  # the layer's own scale/offset for every band
    offset: Union[float, None] = None

    @classmethod
    def parse(cls, body: Body) -> StatisticsBody:
        """The request of ``body``; :class:`BadRequestError` for unknown fields, a
        ``geometry`` that is not a valid lon/lat Polygon or MultiPolygon
        (:func:`leafmap_tiles.render.zonal.check_geometry`), ``percentiles`` that are
        not numbers in [0, 100], ``stats`` that are not a list of statistic names, a
        ``style`` that is not an object, a ``scale``/``offset`` that is not a finite
        number."""
        from leafmap_tiles.render import zonal

        _only(body, ("geometry", "percentiles", "stats", "style", "scale", "offset"), "statistics")
        geometry = zonal.check_geometry(body.get("geometry"))
        percentiles = tuple(zonal.check_percentiles(body.get("percentiles")))
        stats = zonal.check_stats(body.get("stats"))
        style = {k: str(v) for k, v in _style(body, "style").items()}
        numbers: dict[str, float] = {}
        for name in ("scale", "offset"):
            v = body.get(name)
            if v is not None:
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise BadRequestError(f"{name!r} must be a finite number, got {str(v)[:40]!r}")
                numbers[name] = float(v)
        return cls(geometry, percentiles, stats, style, numbers.get("scale"), numbers.get("offset"))

"""The shapes the kernel and the tile server exchange (JSON over HTTP), and the
source-path type of every part.

The kernel's client (:mod:`leafmap_tiles.client.server`) starts the server process with
a :class:`ServerConfig` on its stdin and reads a :class:`ServerStarted` line back.  It
sends a :class:`Registration` and gets a :class:`RegistrationAnswer` (whose ``info`` is a
:class:`SourceInfoJSON`, :meth:`leafmap_tiles.render.SourceInfo.to_json`); ``/info``
answers an :class:`InfoAnswer`, ``/point`` a :class:`PointAnswer`, ``/points`` (body
:class:`PointsRequest`) a :class:`PointsAnswer`.  The kernel-only routes take a
:class:`ColormapRequest` (answer :class:`ColormapAnswer`), a :class:`GdalChange` and a
:class:`BackgroundRequest`.  These are ``TypedDict`` s: the JSON itself, with its field
names and types written down once; the client builds and reads them, the server
validates what it is sent with the parameter classes of
:mod:`leafmap_tiles.server.session_params` (one per body, the same fields; a
:class:`~leafmap_tiles.errors.BadRequestError` naming the field for any other shape)
and builds its answers as these types.  ``tests/server`` checks both.

A source is one file or URL (``str``) or a :class:`Mosaic` of several, drawn as one
layer (for each pixel the first file with data).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Optional, TypedDict, Union

__all__ = [
    "BackgroundRequest",
    "ColormapAnswer",
    "ColormapRequest",
    "Credential",
    "GdalChange",
    "InfoAnswer",
    "Mosaic",
    "PointAnswer",
    "PointFailure",
    "PointResult",
    "PointLayer",
    "PointValues",
    "PointsAnswer",
    "PointsRequest",
    "Registration",
    "RegistrationAnswer",
    "ServerConfig",
    "ServerStarted",
    "SourceDescription",
    "SourceInfoJSON",
    "SourcePath",
    "StatisticsRequest",
    "Stretch",
    "is_mosaic",
    "members",
    "source_path",
]


class Mosaic(tuple[str, ...]):
    """The paths/URLs of a source drawn as one layer (at least two; a tuple, so it is a
    cache key and compares equal to the plain tuple of the same paths)."""

    __slots__ = ()

    def __new__(cls, paths: Iterable[str]) -> Mosaic:
        items = tuple(paths)
        if len(items) < 2 or not all(isinstance(p, str) and p for p in items):
            raise ValueError(f"a mosaic is two or more non-empty paths, got {items!r}")
        return super().__new__(cls, items)

    def __repr__(self) -> str:
        return f"Mosaic({list(self)!r})"


#: What names a source's pixels: one path or URL, or a mosaic of several.
SourcePath = Union[str, Mosaic]


def is_mosaic(path: object) -> bool:
    """Whether ``path`` is a source of several files (a :class:`Mosaic`, or the plain
    tuple of paths older callers pass)."""
    return isinstance(path, tuple)


def members(path: str | tuple[str, ...]) -> tuple[str, ...]:
    """The files of a source: ``(path,)`` for one file, the mosaic's paths otherwise."""
    return tuple(path) if isinstance(path, tuple) else (path,)


def source_path(value: object) -> SourcePath | None:
    """A registration's ``path`` field (or a path the kernel was given) as a
    :data:`SourcePath`: a non-empty string, or a list or tuple (a :class:`Mosaic`
    included) of them (one item is that path, two or more a :class:`Mosaic`); None for
    anything else."""
    if isinstance(value, (list, tuple)) and value and all(isinstance(p, str) and p for p in value):
        return Mosaic(value) if len(value) > 1 else value[0]
    return value if isinstance(value, str) and value else None


class _RegistrationBase(TypedDict):
    path: Union[str, list[str]]  # one path/URL, or two or more for a mosaic


class Registration(_RegistrationBase, total=False):
    """Body of ``POST /{token}/sources`` (the kernel only); the client keeps it to send
    it again after a restart (then with the ``id`` the server gave)."""

    style: dict[str, Any]  # style parameters validated against the file (indexes, vmin ...)
    defaults: dict[str, Any]  # parameters the tile URLs may override
    protected: bool  # tiles never cached by the browser (credentials, changing files)
    id: str  # re-registration after a restart keeps the id, so URLs keep working


class SourceDescription(TypedDict):
    """The fields of a source's description that every answer about it has (the
    registration's ``info`` and ``/info``)."""

    width: int
    height: int
    count: int
    visible_count: int
    alpha_index: Optional[int]
    dtype: str
    nodata: Union[float, str, None]  # "nan" for NaN
    crs: Optional[str]
    bounds: list[float]  # west, south, east, north (EPSG:4326 degrees)
    native_bounds: list[float]  # in ``crs``
    band_names: list[str]
    band_descriptions: list[str]
    scales: list[float]
    offsets: list[float]
    has_palette: bool
    minzoom: int
    maxzoom: int
    overviews: list[int]
    gcps: bool


class SourceInfoJSON(SourceDescription):
    """A registration's ``info``: :class:`leafmap_tiles.render.SourceInfo` as JSON
    (:meth:`~leafmap_tiles.render.SourceInfo.to_json`), with its path (the kernel's)."""

    path: Union[str, list[str]]
    statistics: dict[str, Any]


class InfoAnswer(SourceDescription):
    """Answer of ``GET /{token}/info/{id}?<style>``: the source's description without
    its path (the browser may ask), with the style's per-band statistics."""

    id: str
    version: Optional[str]  # the local files' state (None for URLs), as in RegistrationAnswer
    statistics: list[dict[str, Any]]  # per band: min, max, mean, std, percentiles ...


class Stretch(TypedDict):
    """The values drawn as the colormap's ends, one per band (style's or computed)."""

    vmin: list[float]
    vmax: list[float]


class RegistrationAnswer(TypedDict):
    """Answer of ``POST /{token}/sources``."""

    id: str
    info: SourceInfoJSON
    style: dict[str, Any]  # the style as tile URL parameters
    statistics: list[dict[str, Any]]  # per band: min, max, mean, std, percentiles ...
    stretch: Stretch
    palette: bool  # tiles are paletted PNGs
    version: Optional[str]  # the local files' state (None for URLs)


class PointValues(TypedDict):
    """A source's values at one place, as its layer shows them."""

    inside: bool  # (lon, lat) is inside the raster
    values: list[Optional[float]]  # per band (or the expression's one value); None: nodata
    bands: list[str]
    nodata: Optional[float]  # the layer's nodata (None: none, or NaN)
    scales: list[float]  # per band, GDAL's (physical value = raw * scale + offset)
    offsets: list[float]


class PointResult(PointValues):
    """One result of ``POST /{token}/points``."""

    id: str


class PointAnswer(PointResult):
    """Answer of ``GET /{token}/point/{id}?lon&lat``."""

    lon: float
    lat: float


class PointFailure(TypedDict):
    """One result of ``/points`` whose source failed (the others still answer)."""

    inside: None
    values: None
    error: str  # scrubbed message
    kind: str  # the error's class name (leafmap_tiles.errors)
    id: str


class PointsAnswer(TypedDict):
    """Answer of ``POST /{token}/points``: the values of several sources at one place."""

    lon: float
    lat: float
    results: list[Union[PointResult, PointFailure]]


class PointLayer(TypedDict, total=False):
    """One source of a :class:`PointsRequest`."""

    id: str  # a registered source id
    style: dict[str, Any]  # tile URL parameters (the layer's style)


class PointsRequest(TypedDict):
    """Body of ``POST /{token}/points``."""

    lon: float  # EPSG:4326 degrees; any longitude (the map repeats the world)
    lat: float  # -90 .. 90
    layers: list[PointLayer]


class StatisticsRequest(TypedDict, total=False):
    """Body of ``POST /{token}/statistics/{id}``: statistics of a source over a polygon."""

    geometry: dict[str, Any]  # GeoJSON Polygon/MultiPolygon in EPSG:4326 (required)
    percentiles: list[float]  # each in [0, 100]
    stats: Optional[list[str]]  # among mean, median, min, max, std; null or absent: all
    style: dict[str, Any]  # tile URL parameters (the layer's style)
    scale: Optional[float]  # the layer's own scale/offset (e.g. STAC raster:scale)
    offset: Optional[float]


class ColormapRequest(TypedDict):
    """Body of ``POST /{token}/colormaps`` (the kernel only)."""

    colormap: Union[list[Any], dict[str, Any]]  # colours, {value: colour}, or {"colors": ...}


class ColormapAnswer(TypedDict):
    """Answer of ``POST /{token}/colormaps``."""

    id: str  # "cm:<hex>", the ``colormap`` parameter of tile URLs
    kind: str  # "lut" (a table of colours over vmin..vmax) or "explicit" ({value: colour})
    n: int  # entries: colours of the table, or values of an explicit map


class Credential(TypedDict):
    """HTTP Basic credentials for the URLs on one host."""

    host: str  # "name" (any port), "name:port" or a URL (see leafmap_tiles._hosts)
    username: str
    password: str


class GdalChange(TypedDict, total=False):
    """Body of ``POST /{token}/gdal`` (the kernel only), and ``gdal`` of
    :class:`ServerConfig`: credentials to add, hosts whose credentials to forget."""

    credentials: list[Credential]
    clear_hosts: list[str]


class BackgroundRequest(TypedDict):
    """Body of ``POST /{token}/background`` (the kernel only): the sources of
    ``owner`` (e.g. a time slider's hidden frames) that render after every other
    source's tiles; an empty ``ids`` clears the owner's set."""

    owner: str
    ids: list[str]


class ServerConfig(TypedDict):
    """The one JSON line the kernel writes to a new server process's stdin
    (``python -m leafmap_tiles.server``)."""

    token: str  # guards every session route
    admin_key: str  # header X-Leafmap-Tiles-Key of the kernel-only routes
    parent_pid: int  # the server exits when this process is gone
    port: int  # 0: any free port
    workers: Optional[int]  # None: leafmap_tiles.settings.session_workers()
    sources: list[Registration]  # registrations before a restart (each with its "id")
    colormaps: list[Union[list[Any], dict[str, Any]]]  # colormap specs before a restart
    gdal: GdalChange


class ServerStarted(TypedDict):
    """The one JSON line a server process prints on stdout once its port is bound."""

    port: int
    pid: int

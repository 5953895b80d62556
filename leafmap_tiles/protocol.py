"""The shapes the kernel and the tile server exchange (JSON over HTTP), and the
source-path type of every part.

The client (:mod:`leafmap_tiles.client.server`) sends a :class:`Registration` and gets a
:class:`RegistrationAnswer`; ``/info`` answers a :class:`SourceInfoJSON`
(:meth:`leafmap_tiles.render.SourceInfo.to_json`), ``/point`` a :class:`PointAnswer`,
``/points`` a :class:`PointsAnswer`.  These are ``TypedDict`` s: the JSON itself, with
its field names and types written down once (mypy checks the code that builds and
reads them).

A source is one file or URL (``str``) or a :class:`Mosaic` of several, drawn as one
layer (for each pixel the first file with data).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Optional, TypedDict, Union

__all__ = [
    "Mosaic",
    "PointAnswer",
    "PointFailure",
    "PointResult",
    "PointValues",
    "PointsAnswer",
    "Registration",
    "RegistrationAnswer",
    "SourceInfoJSON",
    "SourcePath",
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
    """A registration's ``path`` field as a :data:`SourcePath`: a non-empty string, or a
    list of them (a list of one is that path, two or more a :class:`Mosaic`); None for
    anything else."""
    if isinstance(value, list) and value and all(isinstance(p, str) and p for p in value):
        return Mosaic(value) if len(value) > 1 else value[0]
    return value if isinstance(value, str) and value else None


class _RegistrationBase(TypedDict):
    path: Union[str, list[str]]


class Registration(_RegistrationBase, total=False):
    """Body of ``POST /{token}/sources`` (the kernel only)."""

    style: dict[str, Any]  # style parameters validated against the file (indexes, vmin ...)
    defaults: dict[str, Any]  # parameters the tile URLs may override
    protected: bool  # tiles never cached by the browser (credentials, changing files)
    id: str  # re-registration after a restart keeps the id, so URLs keep working


class SourceInfoJSON(TypedDict):
    """``/info`` and a registration's ``info``: :class:`leafmap_tiles.render.SourceInfo`."""

    path: Union[str, list[str]]
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
    statistics: dict[str, Any]


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

"""The query parameters of Terracotta's HTTP API, one frozen dataclass per route.

Each class parses and validates a route's query (``Query.parse(params)``, ``params``
the query with the first value of a repeated name, as Flask does) and raises
:class:`~leafmap_tiles.errors.BadRequestError` (400) naming the parameter.  Each field
carries its OpenAPI description (:func:`param`), so ``/swagger.json`` is built from
these classes (:func:`openapi_parameters`) and cannot drift from what is accepted.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional, TypeVar, Union

from leafmap_tiles.errors import BadRequestError, InvalidKeyError

__all__ = [
    "ColormapQuery",
    "ComputeQuery",
    "DatasetsQuery",
    "MetadataBody",
    "MetadataQuery",
    "RgbQuery",
    "SinglebandQuery",
    "openapi_parameters",
    "param",
    "split_keys",
    "tile_address",
]

MAX_POST_METADATA_KEYS = 100
MAX_TILE_SIDE = 2048
MAX_ZOOM = 30
MAX_INT = 2**53  # limit, page: larger values cannot be an SQL LIMIT/OFFSET
MAX_KEY_LENGTH = 1024
MAX_COLORBAR_VALUES = 10000
DEFAULT_LIMIT = 100
METADATA_COLUMNS = ("bounds", "convex_hull", "valid_percentage", "range", "mean", "stdev", "percentiles",
                    "metadata")
_PERCENTILE = re.compile(r"p[0-9]+", re.ASCII)  # ASCII digits only: "p١" is not a percentile
_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)  # int() also takes "²", "①", "١"
_TRUE = {"t", "true", "on", "y", "yes", "1"}
_FALSE = {"f", "false", "off", "n", "no", "0"}

#: One end of a stretch range: a number, None (the dataset's min or max) or "pN".
RangeEnd = Union[float, str, None]
Range = list[RangeEnd]
RGBA = tuple[int, int, int, int]
Params = Mapping[str, str]

_RANGE = ("[min, max] as a JSON array; each item a number, null (the dataset's minimum or maximum) "
          "or 'pN' with 0 <= N <= 100 (the N-th percentile of the dataset; p0 minimum, p100 maximum)")
_NUMBERS = "[min, max] numbers as a JSON array"
_TILE_SIZE = "[rows, cols] of the PNG as a JSON array (default [256, 256])"

#: ``schema`` markers replaced by the server's colormap names in :func:`openapi_parameters`.
COLORMAPS = "<colormaps>"
COLORMAPS_OR_EXPLICIT = "<colormaps or explicit>"


def param(description: str, *, default: Any = None, required: bool = False, example: str | None = None,
          schema: dict[str, Any] | str | None = None, name: str | None = None) -> Any:
    """A dataclass field that is a query parameter, with its OpenAPI description."""
    meta = {"description": description, "required": required, "example": example,
            "schema": schema or {"type": "string"}, "name": name}
    return field(default=default, metadata={"openapi": meta})


def openapi_parameters(cls: type, colormaps: list[str]) -> list[dict[str, Any]]:
    """The OpenAPI ``parameters`` (``in: query``) of a query class, in field order;
    ``colormaps`` fill the ``enum`` of the colormap parameters."""
    out = []
    for f in dataclasses.fields(cls):
        meta = f.metadata.get("openapi")
        if meta is None:
            continue
        schema = meta["schema"]
        if schema == COLORMAPS:
            schema = {"type": "string", "enum": list(colormaps)}
        elif schema == COLORMAPS_OR_EXPLICIT:
            schema = {"type": "string", "enum": ["explicit", *colormaps]}
        p: dict[str, Any] = {"in": "query", "name": meta["name"] or f.name, "description": meta["description"],
                             "required": meta["required"], "schema": schema}
        if meta["example"] is not None:
            p["example"] = meta["example"]
        out.append(p)
    return out


# --------------------------------------------------------------------------- values


def _json_param(params: Params, name: str) -> Any:
    val = params.get(name)
    if val is None or val == "":
        return None
    try:
        return json.loads(val)
    except (ValueError, RecursionError):
        raise BadRequestError(f"Could not decode value {val[:100]} for {name} as JSON") from None


def _number(value: Any, name: str) -> float:
    try:
        ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(float(value))
    except OverflowError:  # an integer beyond float range
        ok = False
    if not ok:
        raise BadRequestError(f"{name}: {str(value)[:40]} is not a finite number")
    return float(value)


def _range(params: Params, name: str, *, allow_percentile: bool = True, allow_null: bool = True) -> Range | None:
    """A JSON ``[min, max]``; items are numbers, ``null`` (metadata range) or ``"pN"``."""
    val = _json_param(params, name)
    if val is None:
        return None
    if not isinstance(val, list) or len(val) != 2:
        raise BadRequestError(f"{name} must be a JSON list of 2 values, e.g. [0, 1], got {params[name]}")
    out: Range = []
    for item in val:
        if item is None and allow_null:
            out.append(None)
        elif isinstance(item, str) and allow_percentile:
            if not _PERCENTILE.fullmatch(item) or int(item[1:]) > 100:
                raise BadRequestError(f"{name}: percentile format is `p<digits>` with 0 <= digits <= 100, got {item!r}")
            out.append(item)
        else:
            out.append(_number(item, name))
    return out


def _numbers(params: Params, name: str) -> tuple[float, float]:
    """A required ``[min, max]`` of numbers (``/colormap``, ``/compute``)."""
    if name not in params:
        raise BadRequestError(f"{name}: Missing data for required field.")
    rng = _range(params, name, allow_percentile=False, allow_null=False)
    if rng is None:
        raise BadRequestError(f"{name}: Missing data for required field.")
    return float(rng[0]), float(rng[1])  # type: ignore[arg-type]  # numbers only here


def _tile_size(params: Params) -> tuple[int, int]:
    val = _json_param(params, "tile_size")
    if val is None:
        return (256, 256)
    if (
        not isinstance(val, list)
        or len(val) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in val)
    ):
        raise BadRequestError(f"tile_size must be a JSON list of 2 integers, e.g. [256, 256], got {params['tile_size']}")
    if not all(1 <= v <= MAX_TILE_SIDE for v in val):
        raise BadRequestError(f"tile_size values must be between 1 and {MAX_TILE_SIDE}, got {val}")
    return (val[0], val[1])


def _colormap(params: Params, *, allow_explicit: bool) -> str | None:
    from leafmap_tiles.render.terracotta import available_colormaps

    name = params.get("colormap")
    if name is None or name == "":
        return None
    if name == "explicit" and allow_explicit:
        return name
    if name.lower() not in available_colormaps() or name != name.lower():
        raise BadRequestError(f"colormap: must be one of the names listed by /swagger.json (lower case), got {name!r}")
    return name


def _explicit_map(params: Params) -> list[tuple[float, RGBA]]:
    val = _json_param(params, "explicit_color_map")
    if not isinstance(val, dict) or not val:
        raise BadRequestError('explicit_color_map must be a non-empty JSON object, e.g. {"1": [255, 0, 0], "2": "#00ff00"}')
    if len(val) > 255:
        raise BadRequestError("Explicit color map must contain less than 256 values")
    out = []
    for key, colour in val.items():
        try:
            value = float(key)
        except ValueError:
            raise BadRequestError(f"explicit_color_map key {key!r} is not a number") from None
        if isinstance(colour, str):
            hexs = colour.lstrip("#")
            if not re.fullmatch(r"[0-9a-fA-F]{6}([0-9a-fA-F]{2})?", hexs):
                raise BadRequestError(f"Could not decode value {colour} in explicit_color_map as hex string")
            parts = [int(hexs[i : i + 2], 16) for i in range(0, len(hexs), 2)]
        elif isinstance(colour, list) and len(colour) in (3, 4):
            comps = [_number(c, "explicit_color_map") for c in colour]
            if any(c < 0 or c > 255 for c in comps):
                raise BadRequestError(f"explicit_color_map colour {colour} has a component outside 0..255")
            parts = [int(c) for c in comps]
        else:
            raise BadRequestError(f"explicit_color_map colour {colour!r} must be [r, g, b], [r, g, b, a] or '#rrggbb'")
        parts += [255] * (4 - len(parts))
        out.append((value, (parts[0], parts[1], parts[2], parts[3])))
    return out


def _bool(value: str, name: str) -> bool:
    low = value.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise BadRequestError(f"{name}: not a valid boolean: {value!r}")


def _int(value: str, name: str, minimum: int = 0, maximum: int = MAX_INT) -> int:
    text = value.strip()
    if len(text) > 20 or not _INTEGER.fullmatch(text):
        raise BadRequestError(f"{name}: not a valid integer (at most {maximum}): {value[:40]!r}")
    out = int(text)
    if out < minimum:
        raise BadRequestError(f"{name}: must be greater than or equal to {minimum}, got {out}")
    if out > maximum:
        raise BadRequestError(f"{name}: must be at most {maximum}, got {out}")
    return out


def _list_value(value: str) -> str | list[str]:
    if len(value) >= 2 and value[0] == "[" and value[-1] == "]":
        return [v.strip() for v in value[1:-1].split(",")]
    return value


def _no_color_transform(params: Params) -> None:
    if params.get("color_transform"):
        raise BadRequestError("color_transform is not supported by this server")


# --------------------------------------------------------------------------- path parts


def split_keys(keys: str) -> list[str]:
    """Key values of a URL path (``"a/b/c"``), each at most :data:`MAX_KEY_LENGTH` long
    (:class:`InvalidKeyError` otherwise)."""
    out = [k for k in keys.split("/") if k]
    if any(len(k) > MAX_KEY_LENGTH for k in out):
        raise InvalidKeyError(f"key values must be at most {MAX_KEY_LENGTH} characters long")
    return out


def tile_address(z: int, x: int, y: int) -> tuple[int, int, int]:
    """``(z, x, y)`` of an existing XYZ tile (z at most :data:`MAX_ZOOM`)."""
    if z > MAX_ZOOM:
        raise BadRequestError(f"zoom level {z} is above the maximum {MAX_ZOOM}")
    if x >= 2**z or y >= 2**z:
        raise BadRequestError(f"tile {z}/{x}/{y} does not exist (0 <= x, y < 2**z)")
    return z, x, y


# --------------------------------------------------------------------------- queries

Q = TypeVar("Q")


@dataclass(frozen=True)
class SinglebandQuery:
    """``/singleband/{keys}/...``: one dataset through a colormap or exact colours."""

    stretch_range: Optional[Range] = param(_RANGE, example="[0,1]")
    colormap: Optional[str] = param("colormap name, or 'explicit' with explicit_color_map",
                                    schema=COLORMAPS_OR_EXPLICIT)
    explicit_color_map: Optional[list[tuple[float, RGBA]]] = param(
        "JSON object {value: [r,g,b(,a)] or '#rrggbb'} for colormap=explicit: exact colours, other values "
        "transparent", example='{"1": [255, 0, 0], "2": "#00ff00"}')
    tile_size: tuple[int, int] = param(_TILE_SIZE, default=(256, 256), example="[256,256]")

    @classmethod
    def parse(cls, params: Params) -> SinglebandQuery:
        """The query of ``params``; :class:`BadRequestError` for invalid values.
        ``colormap=explicit`` gives ``colormap=None`` and the parsed ``explicit_color_map``."""
        shape = _tile_size(params)
        stretch = _range(params, "stretch_range")
        cmap = _colormap(params, allow_explicit=True)
        _no_color_transform(params)
        explicit = None
        if cmap == "explicit":
            if not params.get("explicit_color_map"):
                raise BadRequestError("colormap: explicit_color_map argument must be given for colormap=explicit")
            explicit = _explicit_map(params)
            cmap = None
        elif params.get("explicit_color_map"):
            raise BadRequestError("explicit_color_map: explicit_color_map can only be given for colormap=explicit")
        return cls(stretch, cmap, explicit, shape)


@dataclass(frozen=True)
class RgbQuery:
    """``/rgb/{keys}/...``: three datasets differing in the last key as red, green, blue."""

    r: str = param("last key value of the red band", default="", required=True)
    g: str = param("last key value of the green band", default="", required=True)
    b: str = param("last key value of the blue band", default="", required=True)
    r_range: Optional[Range] = param(_RANGE)
    g_range: Optional[Range] = param(_RANGE)
    b_range: Optional[Range] = param(_RANGE)
    tile_size: tuple[int, int] = param(_TILE_SIZE, default=(256, 256), example="[256,256]")

    @classmethod
    def parse(cls, params: Params) -> RgbQuery:
        """The query of ``params``; :class:`BadRequestError` for invalid values."""
        shape = _tile_size(params)
        missing = [c for c in ("r", "g", "b") if not params.get(c)]
        if missing:
            raise BadRequestError(f"{', '.join(missing)}: Missing data for required field.")
        ranges = [_range(params, f"{c}_range") for c in ("r", "g", "b")]
        _no_color_transform(params)
        return cls(params["r"], params["g"], params["b"], ranges[0], ranges[1], ranges[2], shape)

    @property
    def bands(self) -> list[tuple[str, str, Optional[Range]]]:
        """``(channel, last key value, range)`` for r, g, b."""
        return [("r", self.r, self.r_range), ("g", self.g, self.g_range), ("b", self.b, self.b_range)]


@dataclass(frozen=True)
class ComputeQuery:
    """``/compute/{keys}/...``: one band computed from datasets v1..v5."""

    expression: str = param("expression over v1..v5 (numbers, + - * / % **, comparisons, & | ~, numpy functions "
                            "such as where, sqrt, log, masked_where), evaluated in float64",
                            default="", required=True, example="(v1 - v2) / (v1 + v2)")
    stretch_range: tuple[float, float] = param(_NUMBERS, default=(0.0, 1.0), required=True, example="[-1,1]")
    colormap: Optional[str] = param("colormap name (see /colormap)", schema=COLORMAPS)
    tile_size: tuple[int, int] = param(_TILE_SIZE, default=(256, 256), example="[256,256]")
    v1: Optional[str] = param("last key value of the dataset bound to v1")
    v2: Optional[str] = param("last key value of the dataset bound to v2")
    v3: Optional[str] = param("last key value of the dataset bound to v3")
    v4: Optional[str] = param("last key value of the dataset bound to v4")
    v5: Optional[str] = param("last key value of the dataset bound to v5")

    @classmethod
    def parse(cls, params: Params) -> ComputeQuery:
        """The query of ``params``; :class:`BadRequestError` for invalid values,
        :class:`~leafmap_tiles.errors.StyleError` for an invalid expression."""
        from leafmap_tiles.render import expression as tc_expression

        shape = _tile_size(params)
        expr = params.get("expression")
        if not expr:
            raise BadRequestError("expression: Missing data for required field.")
        lo, hi = _numbers(params, "stretch_range")
        if not hi > lo:
            raise BadRequestError("stretch_range: Upper stretch bounds must be larger than lower bounds")
        cmap = _colormap(params, allow_explicit=False)
        _, used = tc_expression.parse(expr)
        if not used:
            raise BadRequestError("expression does not use any operand v1..v5, so it does not return an array")
        operands = {f"v{i}": params[f"v{i}"] for i in range(1, 6) if params.get(f"v{i}")}
        missing = sorted(used - set(operands))
        if missing:
            raise BadRequestError(f"expression uses {', '.join(missing)} but no key value was given for it")
        if not operands:
            raise BadRequestError("give at least one operand v1..v5 (the last key's value of a dataset)")
        return cls(expr, (lo, hi), cmap, shape, *(operands.get(f"v{i}") for i in range(1, 6)))

    @property
    def operands(self) -> dict[str, str]:
        """``{"v1": last key value, ...}`` of the operands given."""
        values = (self.v1, self.v2, self.v3, self.v4, self.v5)
        return {f"v{i}": v for i, v in enumerate(values, 1) if v}


@dataclass(frozen=True)
class ColormapQuery:
    """``/colormap``: the values and colours of a colour bar."""

    stretch_range: tuple[float, float] = param(_NUMBERS, default=(0.0, 1.0), required=True)
    colormap: Optional[str] = param("colormap name (see /colormap)", schema=COLORMAPS)
    num_values: int = param("number of values (default 255)", default=255, schema={"type": "integer"})

    @classmethod
    def parse(cls, params: Params) -> ColormapQuery:
        """The query of ``params``; :class:`BadRequestError` for invalid values."""
        rng = _numbers(params, "stretch_range")
        if not math.isfinite(rng[1] - rng[0]):  # the values spread over it would overflow to inf/NaN
            raise BadRequestError(f"stretch_range: the span max - min must be a finite number, got {list(rng)}")
        cmap = _colormap(params, allow_explicit=False)
        num = _int(params["num_values"], "num_values", minimum=1) if "num_values" in params else 255
        if num > MAX_COLORBAR_VALUES:
            raise BadRequestError(f"num_values must be at most {MAX_COLORBAR_VALUES}")
        return cls(rng, cmap, num)


@dataclass(frozen=True)
class DatasetsQuery:
    """``/datasets``: key values of the datasets matching some key values."""

    where: dict[str, Union[str, list[str]]] = param("value or [value1,value2] of that key", default=None,
                                                    name="<key name>")
    limit: int = param("datasets per page (default 100)", default=DEFAULT_LIMIT,
                       schema={"type": "integer", "minimum": 0})
    page: int = param("page number from 0", default=0, schema={"type": "integer", "minimum": 0})
    order_by: Optional[list[str]] = param("key names to sort by, comma-separated or as [k1,k2]")
    ascending: bool = param("sort order (default true)", default=True, schema={"type": "boolean"})

    @classmethod
    def parse(cls, params: Params) -> DatasetsQuery:
        """The query of ``params``; every other parameter is a key name."""
        rest = dict(params)
        limit = _int(rest.pop("limit"), "limit") if "limit" in rest else DEFAULT_LIMIT
        page = _int(rest.pop("page"), "page") if "page" in rest else 0
        ascending = _bool(rest.pop("ascending"), "ascending") if "ascending" in rest else True
        order_by = rest.pop("order_by", None)
        order = None
        if order_by:
            v = _list_value(order_by)
            order = v if isinstance(v, list) else [s.strip() for s in v.split(",") if s.strip()]
        return cls({k: _list_value(v) for k, v in rest.items()}, limit, page, order, ascending)


@dataclass(frozen=True)
class MetadataQuery:
    """``/metadata``: which columns to return."""

    columns: Optional[list[str]] = param("JSON list of columns to return", example='["range","mean"]')

    @classmethod
    def parse(cls, params: Params) -> MetadataQuery:
        """The query of ``params``; :class:`BadRequestError` for unknown columns."""
        val = _json_param(params, "columns")
        if val is None:
            return cls(None)
        if not isinstance(val, list) or not val or not all(isinstance(c, str) for c in val):
            raise BadRequestError('columns must be a non-empty JSON list of column names, e.g. ["range", "mean"]')
        unknown = [c for c in val if c not in METADATA_COLUMNS]
        if unknown:
            raise BadRequestError(f"unknown metadata column(s) {unknown}; available: {list(METADATA_COLUMNS)}")
        return cls(val)


@dataclass(frozen=True)
class MetadataBody:
    """Body of ``POST /metadata``: ``{"keys": [[k1, k2, ...], ...]}``."""

    keys: list[list[str]]

    @classmethod
    def parse(cls, raw: bytes) -> MetadataBody:
        """The body of ``raw`` JSON; :class:`BadRequestError` for any other shape or more
        than :data:`MAX_POST_METADATA_KEYS` datasets."""
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            raise BadRequestError("Request body must be a JSON object") from None
        if not isinstance(body, dict):
            raise BadRequestError("Request body must be a JSON object")
        unknown = set(body) - {"keys"}
        if unknown:
            raise BadRequestError(f"unknown field(s) in request body: {sorted(unknown)}")
        ds = body.get("keys")
        if not isinstance(ds, list) or not all(
            isinstance(k, list) and all(isinstance(v, str) for v in k) for k in ds
        ):
            raise BadRequestError('"keys" must be a list of lists of key values, e.g. {"keys": [["a", "b"]]}')
        if len(ds) > MAX_POST_METADATA_KEYS:
            raise BadRequestError(
                f"Maximum number of keys exceeded ({MAX_POST_METADATA_KEYS}). "
                "This limit can be configured in the server settings."
            )
        return cls(ds)

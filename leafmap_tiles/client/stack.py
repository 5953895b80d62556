"""Several rasters read as the bands of one virtual source (a GDAL VRT).

A STAC item often keeps each band in its own COG (Earth Search's Sentinel-2: ``red``,
``nir`` ... at 10, 20 or 60 m).  :func:`build_stack` writes a VRT whose band *i* is
member *i*, so that band math (``(nir-red)/(nir+red)``) and RGB composites are read
by the server's usual rio-tiler reader, tile by tile, each member through its own
overviews:

* grid: the CRS of the members (they must share one), the union of their extents,
  the finest member's pixel size (``resolution="highest"``, as ``gdalbuildvrt``) or
  the coarsest (``"lowest"``); coarser members are resampled on read (``resampling``);
* nodata: each member's own nodata marks its missing pixels (a VRT ``<NODATA>`` per
  source); the virtual bands share one nodata value;
* scale/offset: with ``unscale=True`` each member's ``scale``/``offset`` (physical =
  DN * scale + offset) is applied on read, so the bands are in physical units and in
  float; otherwise the stored values are kept;
* dtype: the members' common dtype when nothing has to change, else float32 (float64
  for 32/64-bit integer or float64 members) with NaN as nodata.

The VRT names its members by their GDAL paths (``/vsicurl/https://...`` for URLs);
the tile server gives each URL the credentials of its host only, as for any source.
"""

from __future__ import annotations

import math
import os
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from xml.sax.saxutils import escape

import numpy as np

from leafmap_tiles import _paths
from leafmap_tiles.errors import InvalidSourceError, LeafmapTilesError, StyleError
from leafmap_tiles.gdal_errors import classify

RESAMPLING = ("nearest", "bilinear", "cubic", "cubicspline", "lanczos", "average", "mode")


def _header(member: dict, opener) -> dict:
    """The header of one member; what opening it raised becomes the class of
    :func:`leafmap_tiles.gdal_errors.classify` (an error of the tree is kept), its
    message naming the asset."""
    path = member["path"]
    try:
        with opener(path) as ds:
            if ds.crs is None:
                raise InvalidSourceError(f"{member['name']} ({path}) has no CRS")
            return {
                "crs": ds.crs, "transform": ds.transform, "width": ds.width, "height": ds.height,
                "count": ds.count, "dtypes": list(ds.dtypes), "nodata": ds.nodata,
                "scales": list(ds.scales), "offsets": list(ds.offsets),
                "block": ds.block_shapes[0],
            }
    except LeafmapTilesError:
        raise
    except Exception as exc:
        err = classify(path, exc, "open")
        raise type(err)(f"asset {member['name']!r}: {err}") from exc


def _out_dtype(dtypes: list[str], converted: bool) -> str:
    if not converted and len(set(dtypes)) == 1:
        return dtypes[0]
    wide = any(np.dtype(d).itemsize >= 4 and np.dtype(d).kind in "iu" or d == "float64" for d in dtypes)
    return "float64" if wide else "float32"


GDAL_TYPES = {"uint8": "Byte", "int8": "Int8", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32",
              "int32": "Int32", "float32": "Float32", "float64": "Float64", "int64": "Int64", "uint64": "UInt64"}


def _num(v) -> str:
    if v is None:
        return ""
    v = float(v)
    if math.isnan(v):
        return "nan"
    return repr(int(v)) if v.is_integer() and abs(v) < 2**53 else repr(v)


def build_stack(members: list[dict], out_dir: str, resolution: str = "highest", resampling: str = "nearest",
                unscale: bool = True, opener=None) -> dict:
    """Write a VRT stacking ``members`` and return ``{"path", "band_names", "dtype",
    "nodata", "unscaled"}``.

    ``members``: ``[{"name": "red", "path": GDAL path or URL, "nodata": value or None,
    "scale": float or None, "offset": float or None}, ...]``; ``nodata``/``scale``/
    ``offset`` override the file's own (None: the file's tags).  A member with several
    bands contributes all of them (named ``name_b1``, ``name_b2`` ...).  ``opener``
    opens a GDAL path for its header (default ``rasterio.open``; a provider passes one
    with its host's credentials).  Raises ``StyleError`` for bad arguments and
    ``InvalidSourceError`` when the members share no CRS, or cannot be opened."""
    import rasterio
    from affine import Affine

    if resolution not in ("highest", "lowest"):
        raise StyleError(f"resolution must be 'highest' or 'lowest', got {resolution!r}")
    if resampling not in RESAMPLING:
        raise StyleError(f"resampling must be one of {', '.join(RESAMPLING)}, got {resampling!r}")
    if not members:
        raise StyleError("no assets to stack")
    names = [m["name"] for m in members]
    if len(set(names)) != len(names):
        raise StyleError(f"asset names repeat: {names}")
    # /vsicurl/ for http(s), /vsis3/ ... for s3:// gs:// az://, a local path or file:// URL made absolute
    members = [dict(m, path=_paths.to_gdal_path(m["path"], vsicurl=True)) for m in members]
    opener = opener or rasterio.open
    with ThreadPoolExecutor(max_workers=min(8, len(members))) as pool:
        headers = list(pool.map(lambda m: _header(m, opener), members))
    crs = headers[0]["crs"]
    for m, h in zip(members, headers):
        if h["crs"] != crs:
            raise InvalidSourceError(
                f"assets {members[0]['name']!r} ({crs.to_string()}) and {m['name']!r} "
                f"({h['crs'].to_string()}) have different CRS: they cannot be read as bands of one raster")
        t = h["transform"]
        if t.b != 0 or t.d != 0:
            raise InvalidSourceError(f"asset {m['name']!r} is rotated; stacking needs north-up rasters")
    res_x = [abs(h["transform"].a) for h in headers]
    res_y = [abs(h["transform"].e) for h in headers]
    pick = min if resolution == "highest" else max
    rx, ry = pick(res_x), pick(res_y)
    west = min(h["transform"].c for h in headers)
    north = max(h["transform"].f for h in headers)
    east = max(h["transform"].c + h["width"] * h["transform"].a for h in headers)
    south = min(h["transform"].f + h["height"] * h["transform"].e for h in headers)
    width = max(1, int(round((east - west) / rx)))
    height = max(1, int(round((north - south) / ry)))

    # per band: (member, header, band index, nodata, scale, offset)
    bands = []
    for m, h in zip(members, headers):
        for b in range(1, h["count"] + 1):
            nd = m.get("nodata") if m.get("nodata") is not None else h["nodata"]
            sc = m.get("scale") if m.get("scale") is not None else h["scales"][b - 1]
            of = m.get("offset") if m.get("offset") is not None else h["offsets"][b - 1]
            name = m["name"] if h["count"] == 1 else f"{m['name']}_b{b}"
            bands.append((m, h, b, nd, float(sc if sc is not None else 1.0), float(of if of is not None else 0.0), name))
    scaled = unscale and any(b[4] != 1.0 or b[5] != 0.0 for b in bands)
    dtypes = [h["dtypes"][b - 1] for _, h, b, *_ in bands]
    nodatas = {(_num(nd) if nd is not None else None) for _, _, _, nd, *_ in bands}
    same_nodata = len(nodatas) == 1
    converted = scaled or not same_nodata
    dtype = _out_dtype(dtypes, converted)
    if np.dtype(dtype).kind == "f" and converted:
        out_nodata = float("nan")
    else:
        nd0 = bands[0][3]
        out_nodata = None if nd0 is None else float(nd0)

    gt = Affine(rx, 0.0, west, 0.0, -ry, north)
    lines = [f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">',
             f"  <SRS>{escape(crs.to_wkt())}</SRS>",
             f"  <GeoTransform>{gt.c!r}, {gt.a!r}, 0.0, {gt.f!r}, 0.0, {gt.e!r}</GeoTransform>"]
    for i, (m, h, b, nd, sc, of, name) in enumerate(bands, start=1):
        lines.append(f'  <VRTRasterBand dataType="{GDAL_TYPES[dtype]}" band="{i}">')
        lines.append(f"    <Description>{escape(name)}</Description>")
        if out_nodata is not None:
            lines.append(f"    <NoDataValue>{_num(out_nodata)}</NoDataValue>")
        t = h["transform"]
        x_off = (t.c - west) / rx
        y_off = (north - t.f) / ry
        x_size = h["width"] * abs(t.a) / rx
        y_size = h["height"] * abs(t.e) / ry
        by, bx = h["block"]
        lines.append(f'    <ComplexSource resampling="{resampling}">')
        lines.append(f'      <SourceFilename relativeToVRT="0">{escape(m["path"])}</SourceFilename>')
        lines.append(f"      <SourceBand>{b}</SourceBand>")
        lines.append(f'      <SourceProperties RasterXSize="{h["width"]}" RasterYSize="{h["height"]}" '
                     f'DataType="{GDAL_TYPES[h["dtypes"][b - 1]]}" BlockXSize="{bx}" BlockYSize="{by}"/>')
        lines.append(f'      <SrcRect xOff="0" yOff="0" xSize="{h["width"]}" ySize="{h["height"]}"/>')
        lines.append(f'      <DstRect xOff="{x_off!r}" yOff="{y_off!r}" xSize="{x_size!r}" ySize="{y_size!r}"/>')
        if nd is not None:
            lines.append(f"      <NODATA>{_num(nd)}</NODATA>")
        if scaled and (sc != 1.0 or of != 0.0):
            lines.append(f"      <ScaleOffset>{of!r}</ScaleOffset>")
            lines.append(f"      <ScaleRatio>{sc!r}</ScaleRatio>")
        lines.append("    </ComplexSource>")
        lines.append("  </VRTRasterBand>")
    lines.append("</VRTDataset>")
    path = os.path.join(out_dir, f"stack-{uuid.uuid4().hex}.vrt")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return {"path": path, "band_names": [b[6] for b in bands], "dtype": dtype,
            "nodata": out_nodata, "unscaled": bool(scaled), "members": [m["path"] for m in members]}


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def band_expression(expression: str, band_names: list[str]) -> str:
    """``expression`` over band names (``"(nir-red)/(nir+red)"``) rewritten over
    ``b1``, ``b2`` ... in ``band_names`` order (``"(b2-b1)/(b2+b1)"``).  Names already
    of the form ``b<N>`` and numpy function names (``where``, ``sqrt`` ...) stay.
    Several expressions may be separated by ``;`` (one per output band).  Raises
    ``StyleError`` naming an unknown name, e.g. an asset that was not requested."""
    if not isinstance(expression, str) or not expression.strip():
        raise StyleError(f"expression must be a non-empty string, got {expression!r}")
    index = {n: i for i, n in enumerate(band_names, start=1)}
    allowed = {"where", "sqrt", "log", "log10", "exp", "abs", "minimum", "maximum", "clip", "nan", "pi",
               "sin", "cos", "tan", "arctan", "arctan2", "e", "power", "floor", "ceil", "round", "logical_and",
               "logical_or", "isnan"}

    def sub(m):
        word = m.group(0)
        if word in index:
            return f"b{index[word]}"
        if re.fullmatch(r"b\d+", word) and int(word[1:]) <= len(band_names) or word in allowed:
            return word
        raise StyleError(f"expression {expression!r} names {word!r}, which is not one of the assets "
                         f"read ({', '.join(band_names)}): add it to assets=[...]")

    # numbers such as 1e-3 must not be read as names
    out, pos = [], 0
    for m in re.finditer(r"(?<![\w.])[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?", expression):
        out.append(expression[pos:m.start()])
        token = m.group(0)
        out.append(sub(m) if _IDENT.fullmatch(token) else token)
        pos = m.end()
    out.append(expression[pos:])
    return "".join(out)

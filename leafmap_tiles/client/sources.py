"""Turn what a user passes to ``add_raster`` into something the server can open.

Accepted sources: a local path (``str`` or ``os.PathLike``), an ``http(s)://``,
``s3://`` or ``/vsi...`` URL, an open ``rasterio`` dataset, a numpy array with
``crs=`` and ``transform=`` (shape (rows, cols) or (bands, rows, cols)), or an xarray
``DataArray`` with a rioxarray CRS.  Arrays are written once to a GeoTIFF in the
server's temporary folder with their dtype unchanged (float stays float; NaN is the
nodata of float arrays unless ``nodata=`` is given).
"""

from __future__ import annotations

import os
import uuid

import numpy as np

from leafmap_tiles import _paths
from leafmap_tiles.errors import InvalidSourceError, StyleError


def describe(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return type(source).__name__


def prepare_source(source, tmpdir: str, crs=None, transform=None, nodata=None) -> tuple[str, str]:
    """Return ``(path, default_name)`` for ``source``; writes arrays under ``tmpdir``.

    Raises ``SourceNotFoundError``/``SourceIsDirectoryError``/``InvalidSourceError``
    for local paths that cannot be rasters, ``TypeError`` for unsupported objects and
    ``ValueError`` for arrays without ``crs``/``transform``.
    """
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not path.strip():
            raise InvalidSourceError("empty path: give a raster file path or URL")
        if _paths.is_remote_path(path):
            if _paths.is_s3(path):
                from leafmap_tiles import s3

                s3.settings()  # S3ConfigurationError now, before the map changes
                path = s3.vsi_path(path)
            else:
                path = _paths.to_gdal_path(path)
            name = path.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
            return path, os.path.splitext(name)[0] or "raster"
        path = _paths.local_path(path)  # a file:// URL is the local file it names
        _paths.check_local_path(path)
        return path, os.path.splitext(os.path.basename(path))[0]
    try:
        import rasterio.io
        import rasterio.vrt

        if isinstance(source, (rasterio.io.DatasetReader, rasterio.io.DatasetWriter)):
            return _from_dataset(source, tmpdir)
        if isinstance(source, rasterio.vrt.WarpedVRT):
            return _copy_dataset(source, tmpdir), "warped"
    except ImportError:  # pragma: no cover
        pass
    if type(source).__name__ == "DataArray":
        return _from_dataarray(source, tmpdir, nodata)
    if isinstance(source, np.ndarray):
        return _write_array(source, crs, transform, nodata, tmpdir), "array"
    raise TypeError(
        f"unsupported source type {type(source).__name__}: give a path, a URL, a rasterio dataset, "
        "a numpy array with crs= and transform=, or an xarray DataArray with a CRS"
    )


def _from_dataset(ds, tmpdir: str) -> tuple[str, str]:
    if ds.closed:
        raise InvalidSourceError("the rasterio dataset is closed")
    name = ds.name
    if name and not name.startswith("/vsimem/") and (os.path.exists(name) or _paths.is_remote_path(name)):
        return prepare_source(name, tmpdir)
    return _copy_dataset(ds, tmpdir), "dataset"


def _copy_dataset(ds, tmpdir: str) -> str:
    from rasterio.shutil import copy

    out = os.path.join(tmpdir, f"dataset-{uuid.uuid4().hex}.tif")
    copy(ds, out, driver="GTiff", TILED="YES", COMPRESS="DEFLATE")
    return out


def _from_dataarray(da, tmpdir: str, nodata) -> tuple[str, str]:
    dims = set(da.dims)
    for x_name, y_name in (("lon", "lat"), ("long", "lat"), ("easting", "northing")):
        if {x_name, y_name} <= dims and "x" not in dims:
            da = da.rio.set_spatial_dims(x_dim=x_name, y_dim=y_name)
            break
    try:
        x_dim, y_dim = da.rio.x_dim, da.rio.y_dim
        crs = da.rio.crs
        transform = da.rio.transform()
        nd = da.rio.nodata if nodata is None else nodata
    except Exception as exc:
        raise InvalidSourceError(
            f"DataArray has no usable rioxarray georeference ({exc}); if its spatial dimensions are not "
            "named x/y or longitude/latitude, call da.rio.set_spatial_dims(x_dim=..., y_dim=...)"
        ) from None
    if crs is None:
        raise InvalidSourceError("DataArray has no CRS: set one with da.rio.write_crs(...)")
    extra = [d for d in da.dims if d not in (x_dim, y_dim)]
    if len(extra) > 1:
        raise InvalidSourceError(f"DataArray must have at most one dimension besides {y_dim}/{x_dim}, got {da.dims}")
    da = da.transpose(*extra, y_dim, x_dim)  # (band, y, x) whatever the input order
    name = str(da.name) if da.name is not None else "dataarray"
    return _write_array(np.asarray(da.values), crs, transform, nd, tmpdir), name


def _write_array(arr: np.ndarray, crs, transform, nodata, tmpdir: str) -> str:
    import rasterio
    from affine import Affine

    if crs is None or transform is None:
        raise InvalidSourceError("a numpy array needs crs= (e.g. 'EPSG:4326') and transform= (an affine.Affine)")
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.ndim != 3:
        raise InvalidSourceError(f"array must have shape (rows, cols) or (bands, rows, cols), got {arr.shape}")
    if arr.shape[2] in (3, 4) and arr.shape[0] > 4:
        raise InvalidSourceError(
            f"array shape {arr.shape} looks like (rows, cols, bands); give (bands, rows, cols), "
            "e.g. np.moveaxis(arr, -1, 0)"
        )
    if np.iscomplexobj(arr):
        raise InvalidSourceError(f"complex arrays ({arr.dtype}) cannot be shown; give e.g. np.abs(arr)")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    if arr.dtype.kind not in "uif":
        raise InvalidSourceError(f"unsupported array dtype {arr.dtype}: give integers or floats")
    if nodata is not None and not (isinstance(nodata, float) and nodata != nodata):
        if np.issubdtype(arr.dtype, np.integer):
            info = np.iinfo(arr.dtype)
            if not (float(nodata).is_integer() and info.min <= nodata <= info.max):
                raise StyleError(f"nodata={nodata!r} cannot be held by this {arr.dtype} array "
                                 f"(valid: integers {info.min}..{info.max})")
    if not isinstance(transform, Affine):
        transform = Affine(*list(transform)[:6])
    if nodata is None and np.issubdtype(arr.dtype, np.floating):
        nodata = float("nan")
    out = os.path.join(tmpdir, f"array-{uuid.uuid4().hex}.tif")
    bands, h, w = arr.shape
    profile = dict(
        driver="GTiff", width=w, height=h, count=bands, dtype=arr.dtype, crs=crs,
        transform=transform, nodata=nodata, compress="deflate",
    )
    if h >= 256 and w >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    try:
        with rasterio.open(out, "w", **profile) as dst:
            dst.write(arr)
            factors = [f for f in (2, 4, 8, 16, 32) if min(h, w) // f >= 256]
            if factors:
                from rasterio.enums import Resampling

                dst.build_overviews(factors, Resampling.nearest)
    except Exception as exc:
        if os.path.exists(out):
            os.remove(out)
        raise InvalidSourceError(f"cannot write the array as a raster: {exc}") from None
    return out

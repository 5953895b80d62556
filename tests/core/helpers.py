"""Independent in-process rio-tiler renderings used as the reference for tiles
fetched over HTTP from our server."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def decode(png: bytes) -> np.ndarray:
    """(H, W, 4) uint8 RGBA of any PNG (paletted, grey+alpha, RGBA)."""
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def matplotlib_cmap(name: str) -> dict:
    import matplotlib

    cm = matplotlib.colormaps[name]
    lut = (cm(np.linspace(0, 1, 256)) * 255).round().astype(int)
    return {i: tuple(int(v) for v in lut[i]) for i in range(256)}


def reference_tile(path, z, x, y, *, indexes=None, vmin=None, vmax=None, colormap=None,
                   palette=False, nodata=None, tilesize=256) -> np.ndarray:
    """Render tile z/x/y with rio-tiler alone (Reader.tile, rescale, render) and
    return RGBA.  NaN counts as nodata (the product's contract)."""
    from rio_tiler.io import Reader

    opts = {} if nodata is None else {"nodata": nodata}
    with Reader(path, options=opts) as r:
        img = r.tile(x, y, z, tilesize=tilesize, indexes=indexes,
                     resampling_method="nearest", reproject_method="nearest")
        if np.issubdtype(img.array.dtype, np.floating):
            img.array.mask = np.ma.getmaskarray(img.array) | np.isnan(img.array.data)
        if palette:
            return decode(img.render(colormap=r.colormap))
        if colormap:
            return matplotlib_colours(img.array, colormap, vmin[0], vmax[0])
        n = img.count
        img.rescale(in_range=[(vmin[i], vmax[i]) for i in range(n)])
        return decode(img.render())


def matplotlib_colours(arr: np.ma.MaskedArray, colormap, vmin: float, vmax: float) -> np.ndarray:
    """RGBA of band 1 of ``arr`` as ``matplotlib.pyplot.imshow(arr, cmap=colormap,
    vmin=vmin, vmax=vmax)`` colours it: ``cmap(Normalize(vmin, vmax)(data), bytes=True)``;
    masked pixels transparent (matplotlib's default bad colour)."""
    import matplotlib
    from matplotlib.colors import Normalize

    cmap = matplotlib.colormaps[colormap] if isinstance(colormap, str) else colormap
    band = np.ma.getdata(arr)[0]
    out = np.asarray(cmap(Normalize(vmin, vmax)(band), bytes=True)).copy()
    out[np.ma.getmaskarray(arr)[0]] = 0
    return out


def assert_same_tile(got: np.ndarray, ref: np.ndarray, tol: int = 1) -> None:
    assert got.shape == ref.shape
    ga, ra = got[..., 3] > 0, ref[..., 3] > 0
    assert (ga == ra).all(), f"alpha differs at {(ga != ra).sum()} pixels"
    if ga.any():
        diff = np.abs(got[..., :3].astype(int) - ref[..., :3].astype(int))[ga]
        assert diff.max() <= tol, f"colour differs by up to {diff.max()} DN"

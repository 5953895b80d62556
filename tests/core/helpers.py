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
        n = img.count
        img.rescale(in_range=[(vmin[i], vmax[i]) for i in range(n)])
        cmap = matplotlib_cmap(colormap) if colormap else None
        return decode(img.render(colormap=cmap))


def assert_same_tile(got: np.ndarray, ref: np.ndarray, tol: int = 1) -> None:
    assert got.shape == ref.shape
    ga, ra = got[..., 3] > 0, ref[..., 3] > 0
    assert (ga == ra).all(), f"alpha differs at {(ga != ra).sum()} pixels"
    if ga.any():
        diff = np.abs(got[..., :3].astype(int) - ref[..., :3].astype(int))[ga]
        assert diff.max() <= tol, f"colour differs by up to {diff.max()} DN"

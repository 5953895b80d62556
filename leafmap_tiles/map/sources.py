"""What leafmap users pass where a list of rasters is expected: a folder, a glob
pattern, or STAC items; turned into what :func:`~leafmap_tiles.map.time_slider.build_frames`
takes."""

from __future__ import annotations

import glob
import os

from leafmap_tiles import _paths
from leafmap_tiles.errors import ProviderError, SourceNotFoundError

RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".jp2", ".img", ".nc")


def expand_paths(pattern: str) -> list[str]:
    """The raster files of a folder (name order; suffixes :data:`RASTER_SUFFIXES`) or
    of a glob pattern (``*``, ``?``, ``[...]``, ``**``; sorted).  Raises
    ``SourceNotFoundError`` when nothing matches."""
    path = os.path.expanduser(_paths.from_file_url(os.fspath(pattern)))  # file:// URL: its local path
    if os.path.isdir(path):
        files = sorted(os.path.join(path, f) for f in os.listdir(path)
                       if f.lower().endswith(RASTER_SUFFIXES) and os.path.isfile(os.path.join(path, f)))
        if not files:
            raise SourceNotFoundError(f"folder {pattern!r} holds no raster file ({', '.join(RASTER_SUFFIXES)})")
        return files
    if glob.has_magic(path):
        files = sorted(f for f in glob.glob(path, recursive=True) if os.path.isfile(f))
        if not files:
            raise SourceNotFoundError(f"no file matches {pattern!r}")
        return files
    raise SourceNotFoundError(f"{pattern!r} is neither a folder nor a glob pattern of rasters "
                              "(give a list of paths for several files)")


def slider_input(m, layers, style: dict):
    """(layers, style) for ``build_frames``: a folder or glob string becomes its sorted
    files; a list of STAC items becomes ``{date: [items of that date]}`` (each frame a
    mosaic of its items; ``assets``/``expression`` stay in ``style`` for
    :meth:`Map.create_raster_layer`)."""
    if isinstance(layers, (str, os.PathLike)):
        return expand_paths(layers), style
    from leafmap_tiles.providers.assets import as_item, is_item

    if isinstance(layers, (list, tuple)) and layers and all(is_item(i) for i in layers):
        from leafmap_tiles.providers.assets import asset_names
        from leafmap_tiles.providers.items import group_by_date

        names = asset_names(style["assets"]) if style.get("assets") is not None else None
        out = {}
        for date, group in group_by_date([as_item(i) for i in layers]).items():
            usable = [i for i in group if names is None or all(a in i.assets for a in names)]
            if usable:
                out[date] = usable
        if not out:
            raise ProviderError(f"no item has all of the assets {names}")
        return out, style
    return layers, style

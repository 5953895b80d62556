"""Legends: leafmap's ``add_legend`` (``{label: colour}`` boxes) and the automatic
legend of a paletted or categorical raster (its classes present in the data, named
by the layer's ``class_names``: from Terracotta's ``categories`` metadata, or given
by the user)."""

from __future__ import annotations

import numpy as np

from leafmap_tiles import _paths
from leafmap_tiles.errors import StyleError
from leafmap_tiles.protocol import members, source_path

LEGEND_MAX_SIZE = 1024  # longest side of the overview read for the classes present


def class_names_of(layer) -> dict:
    """``{value: name}`` of a layer: ``layer.class_names`` (user or Terracotta
    ``categories`` metadata ``{name: value}``, turned around)."""
    names = dict(getattr(layer, "class_names", None) or {})
    return {_key(k): str(v) for k, v in names.items()}


def _key(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    return int(f) if f.is_integer() else f


def palette_entries(layer) -> dict:
    """``{value: (r, g, b, a) 0..1}`` of the classes of a paletted raster that occur
    in its data (read from an overview, longest side 1024 px; nodata left out), in
    value order.  Reads the file the layer was registered with (a local file or a
    URL, with its host's credentials).  Raises ``StyleError`` when the layer has no
    colour table."""
    source = source_path((layer.info or {}).get("path"))  # a mosaic's first file
    path = members(source)[0] if source is not None else None
    if not getattr(layer, "palette", False) or path is None:
        raise StyleError("this layer has no colour table of its own: give colormap={value: colour}")
    from leafmap_tiles.providers.access import open_raster

    with open_raster(_paths.from_vsicurl(path)) as ds:
        table = ds.colormap(1)
        f = max(1.0, max(ds.width, ds.height) / LEGEND_MAX_SIZE)
        data = ds.read(1, out_shape=(max(1, int(ds.height / f)), max(1, int(ds.width / f))), masked=True)
    nodata = (layer.info or {}).get("nodata")
    values = np.unique(data.compressed())
    out = {}
    for v in values.tolist():
        if nodata is not None and nodata != "nan" and float(v) == float(nodata):
            continue
        if int(v) in table:
            r, g, b, a = table[int(v)]
            out[int(v)] = (r / 255.0, g / 255.0, b / 255.0, a / 255.0)
    return out


def legend_colormap(layer) -> dict:
    """The ``{value: colour}`` a legend of ``layer`` shows: its categorical colormap,
    else its colour table's classes present in the data."""
    cmap = getattr(layer, "colormap", None)
    if isinstance(cmap, dict):
        return cmap
    return palette_entries(layer)


def add_legend(m, title="Legend", legend_dict=None, labels=None, colors=None, position="bottomright",
               builtin_legend=None, layer_name=None, layer=None, **kwargs):
    """Body of :meth:`Map.add_legend`."""
    from ipyleaflet import WidgetControl

    from leafmap_tiles.map.colorbar import Colorbar

    if builtin_legend is not None:
        raise StyleError("builtin_legend is not bundled here: pass legend_dict={label: colour}, or layer= for a "
                         "paletted raster (its classes and class names)")
    kwargs.pop("shape_type", None)
    if layer is None and layer_name is not None:
        layer = m.find_layer(layer_name)
        if layer is None:
            raise StyleError(f"no layer named {layer_name!r} on this map")
    if legend_dict is None and labels is not None and colors is not None:
        if len(labels) != len(colors):
            raise StyleError(f"{len(labels)} labels for {len(colors)} colors")
        legend_dict = dict(zip(labels, colors))
    if legend_dict is not None:
        if not isinstance(legend_dict, dict) or not legend_dict:
            raise StyleError("legend_dict must be a non-empty {label: colour} dict")
        cmap = {i: c for i, c in enumerate(legend_dict.values())}
        names = {i: str(k) for i, k in enumerate(legend_dict)}
    elif layer is not None:
        cmap = legend_colormap(layer)
        names = class_names_of(layer)
        if not cmap:
            raise StyleError("the layer shows no class (all nodata)")
    else:
        raise StyleError("add_legend needs legend_dict={label: colour}, labels= and colors=, or layer=")
    cb = Colorbar(colormap={k: _colour(c) for k, c in cmap.items()}, class_names=names,
                  label=title, **kwargs)
    cb.control = WidgetControl(widget=cb.widget, position=position, transparent_bg=True)
    m.add(cb.control)
    return cb


def _colour(c):
    """A colour for the legend: names, ``"#rrggbb"``/``"rrggbb"`` (leafmap writes hex
    without ``#``), RGB(A) tuples 0..1 or 0..255."""
    if isinstance(c, str) and len(c) in (6, 8) and all(ch in "0123456789abcdefABCDEF" for ch in c):
        return "#" + c
    return c

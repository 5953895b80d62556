"""Split map (a draggable divider between two layers) and linked maps, as leafmap's
``split_map`` and ``linked_maps``."""

from __future__ import annotations

import os

import ipyleaflet
import ipywidgets
from ipyleaflet import WidgetControl

from leafmap_tiles import _paths
from leafmap_tiles.errors import StyleError


def _side(m, spec, args: dict | None, which: str):
    """(layer, made by us) for one side of a split map."""
    from leafmap_tiles.map.basemaps import basemap_layer
    from leafmap_tiles.providers.assets import is_item

    args = dict(args or {})
    if isinstance(spec, ipyleaflet.Layer):
        if args:
            raise TypeError(f"{which}_args apply to sources, not to a ready-made layer")
        return spec, False
    if isinstance(spec, str) and not args:
        for ts in m.time_sliders:  # a date of a time slider: a copy of that frame
            if spec in ts.labels:
                k = ts.labels.index(spec)
                frame = ts.layers[k]
                if hasattr(frame, "copy") and getattr(frame, "server", None) is not None:
                    # a registration of its own: the side outlives slider.close(), which
                    # releases the frames' sources
                    layer = frame.copy(name=spec)
                    layer.copied_from_frame = True
                    return layer, True
                return ipyleaflet.TileLayer(url=ts.frame_url(k), name=spec, max_zoom=frame.max_zoom,
                                            max_native_zoom=frame.max_native_zoom, tile_size=frame.tile_size,
                                            zoom_offset=frame.zoom_offset), False
        if not (os.path.exists(_paths.local_path(spec)) or _paths.is_remote_path(spec)):
            try:
                return basemap_layer(spec), False
            except StyleError:
                raise StyleError(f"{which}_layer {spec!r} is not a layer, a raster path/URL, a basemap name or a "
                                 "date of a time slider on this map") from None
    if isinstance(spec, (str, os.PathLike)) or is_item(spec) or hasattr(spec, "shape"):
        from leafmap_tiles.map.compat import leafmap_style

        layer = m.create_raster_layer(spec, **leafmap_style(args))
        return layer, True
    raise TypeError(f"{which}_layer must be a layer, a basemap name, a raster path/URL or a STAC item, "
                    f"got {type(spec).__name__}")


class SplitMap:
    """A split map on ``map``: ``control`` (the ``ipyleaflet.SplitMapControl``),
    ``left``/``right`` (its layers), ``labels`` (their WidgetControls).  ``close()``
    removes it all and releases the rasters it registered."""

    def __init__(self, m, left, right, made, labels, close_button=None):
        self.map = m
        self.left, self.right = left, right
        self._made = made
        self.control = ipyleaflet.SplitMapControl(left_layer=left, right_layer=right)
        self.labels = labels
        self.close_button = close_button
        m.add(self.control)
        for c in labels:
            m.add(c)

    def close(self) -> None:
        m = self.map
        for c in [self.control, *self.labels]:
            if c in m.controls:
                m.remove(c)
        for layer, made in zip((self.left, self.right), self._made):
            if made:
                if layer in m._side_layers:
                    m._side_layers.remove(layer)
                layer.release()
        if self.close in m._close_hooks:
            m._close_hooks.remove(self.close)


def split_map(m, left_layer, right_layer, left_args=None, right_args=None, left_label=None, right_label=None,
              left_position="bottomleft", right_position="bottomright", add_close_button=False, **kwargs) -> SplitMap:
    """Body of :meth:`Map.split_map`."""
    unknown = set(kwargs) - {"zoom_control", "fullscreen_control", "layer_control", "widget_layout", "draggable",
                             "left_array_args", "right_array_args"}
    if unknown:
        raise TypeError(f"unexpected argument(s): {', '.join(sorted(unknown))}")
    left, made_left = _side(m, left_layer, left_args, "left")
    try:
        right, made_right = _side(m, right_layer, right_args, "right")
    except Exception:
        if made_left:
            left.release()
        raise
    for layer, made in ((left, made_left), (right, made_right)):
        if made:
            m._side_layers.append(layer)
    labels = []
    for text, pos in ((left_label, left_position), (right_label, right_position)):
        if text:
            w = ipywidgets.HTML(f"<b style='padding:2px 6px;background:rgba(255,255,255,.85)'>{text}</b>")
            labels.append(WidgetControl(widget=w, position=pos))
    sm = SplitMap(m, left, right, (made_left, made_right), labels)
    if add_close_button:
        btn = ipywidgets.Button(icon="times", tooltip="Close the split map",
                                layout=ipywidgets.Layout(width="30px", padding="0"))
        ctl = WidgetControl(widget=btn, position="topright")
        btn.on_click(lambda _: sm.close())
        sm.labels.append(ctl)
        m.add(ctl)
    m._close_hooks.append(sm.close)
    fresh = [layer for layer, made in ((left, made_left), (right, made_right))
             if made and not getattr(layer, "copied_from_frame", False)]
    if fresh:  # a new raster: show it (a copy of a slider date is already in view)
        ref = fresh[0]
        m.zoom_to_bounds(ref.info["bounds"], max_zoom=int(ref.info.get("maxzoom", 18)))
    return sm


def linked_maps(rows: int = 2, cols: int = 2, height: str = "400px", layers=(), labels=(),
                label_position: str = "topright", layer_args=(), **kwargs):
    """A ``rows`` x ``cols`` grid of :class:`~leafmap_tiles.Map` whose centre and zoom
    follow each other (leafmap's ``linked_maps``).  ``layers``: one per map, a basemap
    name, a raster path/URL/STAC item (styled by the matching ``layer_args`` dict)
    or a layer; ``labels`` their captions.  Returns the ``ipywidgets.GridspecLayout``;
    its ``maps`` attribute lists the maps (close them with ``grid.close_maps()``).
    ``**kwargs`` go to each ``Map`` (``center``, ``zoom`` ...)."""
    from leafmap_tiles.map.map import Map

    n = rows * cols
    layers, labels, layer_args = list(layers), list(labels), list(layer_args)
    if len(layers) > n:
        raise StyleError(f"{len(layers)} layers for a {rows}x{cols} grid")
    if labels and len(labels) != len(layers):
        raise StyleError(f"{len(labels)} labels for {len(layers)} layers")
    if layer_args and len(layer_args) != len(layers):
        raise StyleError(f"{len(layer_args)} layer_args for {len(layers)} layers")
    grid = ipywidgets.GridspecLayout(rows, cols, height=height)
    maps = []
    kwargs.setdefault("layer_control", False)
    kwargs.setdefault("fullscreen_control", False)
    try:
        for i in range(n):
            mm = Map(layout=ipywidgets.Layout(height=height), **kwargs)
            if i < len(layers):
                spec = layers[i]
                args = layer_args[i] if layer_args else {}
                layer, made = _side(mm, spec, args, "layers[%d]" % i)
                if made:
                    mm.put_on_map(layer, zoom_to_layer=False)
                elif getattr(layer, "base", False) or not hasattr(layer, "source_id"):
                    mm.set_basemap(layer) if isinstance(spec, str) else mm.add(layer)
                else:
                    mm.add(layer)
                if labels:
                    w = ipywidgets.HTML(f"<b style='padding:2px 6px;background:rgba(255,255,255,.85)'>{labels[i]}</b>")
                    mm.add(WidgetControl(widget=w, position=label_position))
            maps.append(mm)
    except Exception:
        for mm in maps:
            mm.close()
        raise
    first = maps[0]
    rasters = [l for mm in maps for l in mm.layers if hasattr(l, "info") and "bounds" in l.info]
    if rasters and "center" not in kwargs:  # every map on the first raster given
        first.zoom_to_bounds(rasters[0].info["bounds"], max_zoom=int(rasters[0].info.get("maxzoom", 18)))
    for mm in maps[1:]:
        mm.center, mm.zoom = first.center, first.zoom
        ipywidgets.jslink((first, "center"), (mm, "center"))
        ipywidgets.jslink((first, "zoom"), (mm, "zoom"))
    for i, mm in enumerate(maps):
        grid[i // cols, i % cols] = mm
    grid.maps = maps

    def close_maps():
        for mm in maps:
            mm.close()

    grid.close_maps = close_maps
    return grid

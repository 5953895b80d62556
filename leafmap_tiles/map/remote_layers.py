"""Layers of datasets that a remote Terracotta-compatible server renders
(:func:`leafmap_tiles.store.connect`): an ipyleaflet ``TileLayer`` on the server's
``/singleband`` URL, with the colormap and stretch in Terracotta's query parameters."""

from __future__ import annotations

from collections.abc import Mapping

import ipyleaflet

from leafmap_tiles.map.layers import leaflet_bounds


class RemoteDatasetLayer(ipyleaflet.TileLayer):
    """A dataset of a remote Terracotta server.

    Python attributes: ``store`` (the :class:`~leafmap_tiles.store.http.RemoteStore`),
    ``keys`` (key values), ``info`` (``{"bounds": (W, S, E, N) EPSG:4326}``),
    ``stretch`` (``{"vmin": [lo], "vmax": [hi]}``, empty for categories),
    ``colormap`` (what the user gave), ``metadata`` (``{"dataset": {key: value}}``),
    ``class_names``.
    """

    def __init__(self, *, store, keys, info: dict, stretch: dict, colormap, url: str, **kwargs):
        kwargs.setdefault("bounds", leaflet_bounds(info.get("bounds")))
        super().__init__(url=url, **kwargs)
        self.store = store
        self.keys = tuple(keys)
        self.info = info
        self.stretch = stretch
        self.colormap = colormap
        self.metadata = {}
        self.class_names = None
        self.palette = False

    def release(self) -> None:
        """Nothing to release: the remote server owns the dataset."""


def _rgba(colour) -> list[int]:
    from matplotlib.colors import to_rgba

    if isinstance(colour, (list, tuple)) and len(colour) in (3, 4) and all(isinstance(c, int) for c in colour):
        c = list(colour) + [255] * (4 - len(colour))
        return [int(v) for v in c]
    return [int(round(v * 255)) for v in to_rgba(colour)]


def remote_dataset_layer(store, kv, style: dict, stretch, metadata: Mapping) -> RemoteDatasetLayer:
    """The layer of dataset ``kv`` of ``store`` with ``style`` (``colormap``: a
    Terracotta/matplotlib name or ``{value: colour}``; ``stretch``: (lo, hi) or None).

    Raises:
        StyleError: a colormap the server does not know (asked once per name), with
            the same message as for a local dataset when it is no matplotlib name.
    """
    from leafmap_tiles.errors import StyleError

    colormap = style.get("colormap")
    query: dict = {}
    if isinstance(colormap, Mapping):
        query["colormap"] = "explicit"
        query["explicit_color_map"] = {str(k): _rgba(v) for k, v in colormap.items()}
    else:
        if colormap is not None and not isinstance(colormap, str):
            raise StyleError("a remote Terracotta server takes a colormap name or a {value: colour} mapping")
        if colormap:
            query["colormap"] = colormap.lower()
            if not store.has_colormap(colormap.lower()):
                # the local path's error (with its "did you mean") for a name that is no
                # matplotlib colormap either; else the server's own refusal
                from leafmap_tiles.render.colormaps import resolve_colormap

                resolve_colormap(colormap)
                raise StyleError(f"unknown colormap {colormap!r}: the Terracotta server {store.url} has "
                                 "no such colormap (its /colormap answered 400)")
        if stretch is not None:
            query["stretch_range"] = [float(stretch[0]), float(stretch[1])]
    name = style.get("layer_name") or "/".join(kv)
    layer = RemoteDatasetLayer(
        store=store, keys=kv, info={"bounds": tuple(metadata["bounds"])},
        stretch={} if stretch is None else {"vmin": [float(stretch[0])], "vmax": [float(stretch[1])]},
        colormap=colormap, url=store.tile_url("singleband", kv, query), name=name,
        visible=style.get("visible", True), opacity=style.get("opacity", 1.0),
        attribution=style.get("attribution") or "",
    )
    layer.metadata["dataset"] = dict(zip(store.key_names, kv))
    return layer

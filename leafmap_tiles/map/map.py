"""``Map``: an ``ipyleaflet.Map`` that shows rasters through the package's tile server."""

from __future__ import annotations

import os
import weakref

import ipyleaflet

from leafmap_tiles.client import get_server, prepare_source
from leafmap_tiles.client.sources import describe
from leafmap_tiles.errors import StyleError
from leafmap_tiles.map import view
from leafmap_tiles.map.layers import RasterTileLayer

_open_maps: "weakref.WeakSet[Map]" = weakref.WeakSet()


def colormap_param(colormap):
    """Serialise a colormap for a tile URL: a matplotlib name stays a name; a
    ``matplotlib.colors.Colormap`` becomes its 256 colours; lists and ``{value:
    colour}`` dicts become JSON (colours as ``#rrggbbaa``)."""
    import json

    if colormap is None or isinstance(colormap, str):
        return colormap
    from matplotlib.colors import Colormap, to_hex

    if isinstance(colormap, Colormap):
        import numpy as np

        return json.dumps([to_hex(c, keep_alpha=True) for c in colormap(np.linspace(0, 1, 256))])
    if isinstance(colormap, dict):
        return json.dumps({str(k): _colour_json(v) for k, v in colormap.items()})
    if isinstance(colormap, (list, tuple)):
        return json.dumps([_colour_json(c) for c in colormap])
    raise StyleError(f"unsupported colormap {colormap!r}: give a matplotlib name, a Colormap, a list of colours or a {{value: colour}} dict")


def _colour_json(c):
    if isinstance(c, str):
        return c
    if isinstance(c, (list, tuple)):
        return [float(v) for v in c]
    raise StyleError(f"invalid colour {c!r}")


class Map(ipyleaflet.Map):
    """An ipyleaflet Map with :meth:`add_raster`.

    ``basemap=None`` gives a map without any basemap (works offline); otherwise any
    ipyleaflet/xyzservices basemap.  ``layer_control=True`` adds a layers control.
    All maps of a kernel share one tile-server process (started on first use).
    """

    def __init__(self, basemap="default", layer_control: bool = True, **kwargs):
        kwargs.setdefault("scroll_wheel_zoom", True)
        if basemap is None:
            kwargs["layers"] = ()
        elif basemap != "default":
            kwargs["basemap"] = basemap
        super().__init__(**kwargs)
        self._server = None
        self._closed = False
        self.layer_control = None
        if layer_control:
            self.layer_control = ipyleaflet.LayersControl(position="topright")
            self.add(self.layer_control)
        self.observe(self._on_layers_change, names="layers")
        _open_maps.add(self)

    # ---------------------------------------------------------------- server
    @property
    def server(self):
        """The kernel's shared :class:`~leafmap_tiles.client.TileServer`."""
        if self._server is None or self._server.closed:
            self._server = get_server(start=True)
            self._server.add_listener(self._on_server_moved)
        self._bridge(self._server)
        return self._server

    @staticmethod
    def _bridge(server) -> None:
        """Front ends without a jupyter-server (VS Code, Colab): when the user enabled
        jupyter-loopback's comm bridge, route our loopback URLs through it."""
        try:
            import jupyter_loopback
        except ImportError:  # pragma: no cover
            return
        if not jupyter_loopback.is_comm_bridge_enabled():
            return
        port = server.start().port
        if getattr(server, "_bridged_port", None) != port:
            jupyter_loopback.intercept_localhost(port)
            server._bridged_port = port

    def _on_server_moved(self, server) -> None:
        for layer in self.layers:
            if isinstance(layer, RasterTileLayer) and layer.server is server:
                layer.refresh_url()

    # ---------------------------------------------------------------- layers
    def _unique_name(self, name: str) -> str:
        names = {getattr(l, "name", None) for l in self.layers}
        if name not in names:
            return name
        i = 2
        while f"{name} ({i})" in names:
            i += 1
        return f"{name} ({i})"

    def create_raster_layer(self, source, indexes=None, colormap=None, vmin=None, vmax=None, nodata=None,
                            layer_name=None, visible=True, opacity=1.0, attribution=None, defaults=None,
                            protected=False, **style) -> RasterTileLayer:
        """Register ``source`` with the tile server and return its layer without adding
        it to the map.  Same arguments as :meth:`add_raster`."""
        crs = style.pop("crs", None)
        transform = style.pop("transform", None)
        expression = style.pop("expression", None)
        resampling = style.pop("resampling", None)
        tile_size = style.pop("tile_size", None)
        if style:
            raise TypeError(f"unexpected style argument(s): {', '.join(sorted(style))}")
        if isinstance(indexes, bool) or (indexes is not None and not isinstance(indexes, (int, list, tuple))):
            raise StyleError(f"indexes must be an int or a list of ints, got {indexes!r}")
        if isinstance(indexes, int):
            indexes = [indexes]
        if indexes is not None and len(indexes) == 0:
            raise StyleError("indexes is empty")
        if not 0.0 <= float(opacity) <= 1.0:
            raise StyleError(f"opacity must be in [0, 1], got {opacity}")
        server = self.server
        path, default_name = prepare_source(source, server.tmpdir, crs=crs, transform=transform, nodata=nodata)
        params = {
            "indexes": ",".join(str(int(i)) for i in indexes) if indexes is not None else None,
            "expression": expression,
            "vmin": _list_param(vmin),
            "vmax": _list_param(vmax),
            "colormap": colormap_param(colormap),
            "nodata": None if nodata is None else ("nan" if nodata != nodata else nodata),
            "resampling": resampling,
            "tile_size": tile_size,
        }
        params = {k: v for k, v in params.items() if v is not None}
        reg = server.register(path, params, defaults=defaults, protected=protected)
        info = reg["info"]
        ts = int(reg["style"].get("tile_size", 256))
        layer = RasterTileLayer(
            server=server,
            source_id=reg["id"],
            style=reg["style"],
            info=info,
            stretch=reg.get("stretch"),
            statistics=reg.get("statistics"),
            palette=reg.get("palette", False),
            colormap=colormap,
            url=server.tile_url(reg["id"], reg["style"]),
            name=self._unique_name(layer_name or default_name),
            opacity=float(opacity),
            visible=bool(visible),
            attribution=attribution,
            max_zoom=24,
            max_native_zoom=max(int(info.get("maxzoom", 18)) + (1 if ts == 256 else 0), 0),
            tile_size=ts,
            zoom_offset=-1 if ts == 512 else 0,
        )
        if ts == 512:
            layer.tile_size = 512
        if protected:
            layer.metadata["protected"] = True
        return layer

    def add_raster(self, source, indexes=None, colormap=None, vmin=None, vmax=None, nodata=None,
                   layer_name=None, zoom_to_layer=True, visible=True, opacity=1.0, attribution=None,
                   **style) -> RasterTileLayer:
        """Show a raster on the map and return its :class:`RasterTileLayer`.

        Args:
            source: local path, ``http(s)://``/``s3://`` URL, open rasterio dataset,
                numpy array (with ``crs=`` and ``transform=`` keywords; shape (rows, cols)
                or (bands, rows, cols); dtype kept, NaN is nodata) or xarray DataArray
                with a rioxarray CRS.
            indexes: 1-based band index (int) or ``[r, g, b]``; default bands 1-3 of a
                multi-band raster, band 1 otherwise.
            colormap: matplotlib name (``"RdYlGn"``, ``"viridis_r"``), a
                ``matplotlib.colors.Colormap``, a list of colours, or ``{value: colour}``
                for categorical data (exact colours, no stretch, nearest resampling).
                Single band only.  A paletted TIFF uses its own colour table by default.
            vmin, vmax: stretch range in data units (one value, or one per band);
                default: 2nd/98th percentiles of the band computed once from an overview.
            nodata: replaces the file's nodata value; must fit the dtype.
            layer_name: name in the layers control (made unique on this map).
            zoom_to_layer: fit the map to the raster's bounds.
            visible, opacity, attribution: layer options.
            **style: ``expression="(b4-b1)/(b4+b1)"`` (band math in float),
                ``resampling="bilinear"``, ``tile_size=512``, ``crs=``/``transform=``
                for arrays.

        Raises (before anything changes on the map): ``SourceNotFoundError`` (missing
        file, HTTP 404), ``SourceIsDirectoryError``, ``InvalidSourceError`` (empty,
        truncated, not georeferenced), ``StyleError`` (bad indexes, vmin >= vmax,
        unknown colormap, nodata outside the dtype), ``AuthenticationError`` (HTTP
        401/403: log in to the provider), ``SourceTimeoutError`` (no answer).
        """
        layer = self.create_raster_layer(
            source, indexes=indexes, colormap=colormap, vmin=vmin, vmax=vmax, nodata=nodata,
            layer_name=layer_name, visible=visible, opacity=opacity, attribution=attribution, **style,
        )
        try:
            self.add(layer)
        except Exception:
            layer.release()
            raise
        if zoom_to_layer:
            self.zoom_to_bounds(layer.info["bounds"], max_zoom=int(layer.info.get("maxzoom", 18)))
        return layer

    def add_tile_layer(self, url: str, name: str | None = None, attribution: str | None = None,
                       opacity: float = 1.0, visible: bool = True, **kwargs) -> ipyleaflet.TileLayer:
        """Add an XYZ tile layer from a URL template (``.../{z}/{x}/{y}.png``)."""
        if not isinstance(url, str) or not all(k in url for k in ("{z}", "{x}", "{y}")):
            raise ValueError(f"url must be an XYZ template containing {{z}}, {{x}} and {{y}}, got {url!r}")
        layer = ipyleaflet.TileLayer(
            url=url, name=self._unique_name(name or "Tile layer"), attribution=attribution,
            opacity=opacity, visible=visible, **kwargs,
        )
        self.add(layer)
        return layer

    def zoom_to_bounds(self, bounds, max_zoom: int = 22) -> None:
        """Centre and zoom the map on (west, south, east, north) EPSG:4326 bounds."""
        center, zoom = view.fit(bounds, max_zoom=max_zoom)
        self.center = center
        self.zoom = zoom

    def _on_layers_change(self, change) -> None:
        old = {l.model_id: l for l in change["old"] if isinstance(l, RasterTileLayer)}
        new = {l.model_id for l in change["new"]}
        for mid, layer in old.items():
            if mid not in new and layer.release_on_remove:
                layer.release()

    # ---------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Release this map's sources and close the widget.  The shared tile server
        stops when no open map and no registered source remain."""
        if self._closed:
            return
        self._closed = True
        for hook in list(getattr(self, "_close_hooks", [])):
            try:
                hook()
            except Exception:
                pass
        for layer in list(self.layers):
            if isinstance(layer, RasterTileLayer):
                layer.release()
        _open_maps.discard(self)
        server = self._server
        if server is not None:
            server.remove_listener(self._on_server_moved)
            if not any(not m._closed for m in list(_open_maps)) and not server.source_ids:
                server.close()
        super().close()


def _list_param(v):
    if v is None:
        return None
    if isinstance(v, (list, tuple)):
        return ",".join(repr(float(x)) for x in v)
    return repr(float(v))

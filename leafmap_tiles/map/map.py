"""``Map``: an ``ipyleaflet.Map`` that shows rasters through the package's tile server."""

from __future__ import annotations

import weakref

import ipyleaflet

from leafmap_tiles.client import get_server
from leafmap_tiles.map import view
from leafmap_tiles.map.layers import RasterTileLayer, colormap_param, default_layer_name, make_raster_layer  # noqa: F401
from leafmap_tiles.errors import StyleError, TileServerError

_open_maps: "weakref.WeakSet[Map]" = weakref.WeakSet()


class Map(ipyleaflet.Map):
    """An ipyleaflet Map with :meth:`add_raster`, :meth:`add_time_slider` and
    :meth:`add_colorbar`.

    ``basemap=None`` gives a map without any basemap (works offline); otherwise any
    ipyleaflet/xyzservices basemap.  ``layer_control=True`` adds a layer panel whose
    checkboxes and opacity sliders are linked both ways to the layers
    (``m.layer_control``).  ``inspector=True`` shows the values of every raster layer
    where the map is clicked (``m.inspector``).  All maps of a kernel share one
    tile-server process (started on first use).
    """

    def __init__(self, basemap="default", layer_control: bool = True, inspector: bool = True,
                 fullscreen_control: bool = True, scale_control: bool = False, basemap_control: bool = False,
                 height=None, width=None, **kwargs):
        kwargs.setdefault("scroll_wheel_zoom", True)
        if basemap is None:
            kwargs["layers"] = ()
        elif isinstance(basemap, str) and basemap != "default":
            from leafmap_tiles.map.basemaps import basemap_layer

            kwargs["basemap"] = basemap_layer(basemap)  # leafmap/xyzservices names: "OpenTopoMap"
        elif basemap != "default":
            kwargs["basemap"] = basemap
        # plain attributes first: close() (also run by the widget's __del__) must work
        # on a map whose constructor failed
        self._server = None
        self._closed = False
        self._close_hooks: list = []
        self._time_sliders: list = []
        self.layer_control = None
        self.inspector = None
        self.basemap_picker = None
        self._side_layers: list = []  # raster layers shown by a split map, not in self.layers
        super().__init__(**kwargs)  # a bad trait (zoom="x", basemap=...) raises its TraitError here
        for dim, value in (("height", height), ("width", width)):
            if value is not None:
                setattr(self.layout, dim, f"{value}px" if isinstance(value, (int, float)) else str(value))
        if not self.layout.height:
            # room for the slider, colorbar and inspector panels around the map's centre
            self.layout.height = view.DEFAULT_HEIGHT
        try:
            if fullscreen_control:
                self.add(ipyleaflet.FullScreenControl())
            if scale_control:
                self.add(ipyleaflet.ScaleControl(position="bottomleft", imperial=False))
            if basemap_control:
                from leafmap_tiles.map.basemaps import BasemapPicker

                self.basemap_picker = BasemapPicker(self)
                self.add(self.basemap_picker.control)
                self._close_hooks.append(self.basemap_picker.close)
            self.observe(self._on_layers_change, names="layers")
            if layer_control:
                from leafmap_tiles.map.layer_panel import LayerPanel

                self.layer_control = LayerPanel(self)
                self.add(self.layer_control.control)
                self._close_hooks.append(self.layer_control.close)
            if inspector:
                from leafmap_tiles.map.inspector import Inspector

                self.inspector = Inspector(self)
                self._close_hooks.append(self.inspector.close)
        except Exception:
            self.close()  # nothing of a half-built map stays registered
            raise
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
        """Front ends without our jupyter-server proxy (VS Code, Colab, Voila): when the
        server's route is ``"comm"`` (:mod:`leafmap_tiles.client.urls`), or the user
        enabled jupyter-loopback's comm bridge, route our loopback URLs through it."""
        try:
            import jupyter_loopback
        except ImportError:  # pragma: no cover
            return
        if not jupyter_loopback.is_comm_bridge_enabled():
            if server.route.kind != "comm":
                return
            jupyter_loopback.enable_comm_bridge()  # shows its (empty) widget in this cell
        port = server.start().port
        if getattr(server, "_bridged_port", None) != port:
            jupyter_loopback.intercept_localhost(port)
            server._bridged_port = port

    def _repr_mimebundle_(self, **kwargs):
        # with the comm bridge on, a view of it goes out just before the map, in the same
        # output: front ends that give each output its own frame (Colab) then intercept
        # this map's tile URLs too (the bridge's view patches the frame it renders in)
        if self._server is not None and not self._closed:
            try:
                import jupyter_loopback

                if jupyter_loopback.is_comm_bridge_enabled():
                    jupyter_loopback.enable_comm_bridge()
            except Exception:  # never let the bridge break the map's display
                pass
        return super()._repr_mimebundle_(**kwargs)

    def _on_server_moved(self, server) -> None:
        frames = [f for ts in self._time_sliders for f in ts.layers]
        for layer in list(self.layers) + frames:
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
                            layer_name=None, visible=True, opacity=1.0, attribution=None, **style) -> RasterTileLayer:
        """Register ``source`` with the tile server and return its layer without adding
        it to the map.  Same arguments as :meth:`add_raster`."""
        if self._closed:
            raise TileServerError("this Map was closed; create a new Map()")
        if layer_name is not None and not isinstance(layer_name, str):
            raise TypeError(f"layer_name must be a string, got {type(layer_name).__name__}")
        from leafmap_tiles.providers.assets import is_item

        stac_keys = {k: style.pop(k) for k in ("assets", "unscale", "resolution") if k in style}
        if is_item(source) or (isinstance(source, (list, tuple)) and source and all(is_item(s) for s in source)):
            from leafmap_tiles.providers.assets import item_layer

            layer = item_layer(source, server=self.server, name=layer_name and self._unique_name(layer_name),
                               indexes=indexes, colormap=colormap, vmin=vmin, vmax=vmax, nodata=nodata,
                               visible=visible, opacity=opacity, attribution=attribution, **stac_keys, **style)
            if layer_name is None:
                layer.name = self._unique_name(layer.name)
            return layer
        if stac_keys:
            raise TypeError(f"{', '.join(sorted(stac_keys))}= apply to STAC items (a pystac.Item), "
                            f"not to a {type(source).__name__}")
        if hasattr(source, "raster_source"):  # e.g. a collection's item asset
            source, extra = source.raster_source()
            nodata = extra["nodata"] if nodata is None else nodata
            layer_name = layer_name or extra["name"]
            for key in ("scale", "offset", "protected"):
                style.setdefault(key, extra[key])
        return make_raster_layer(
            self.server, source, indexes=indexes, colormap=colormap, vmin=vmin, vmax=vmax, nodata=nodata,
            name=self._unique_name(layer_name or default_layer_name(source)), visible=visible,
            opacity=opacity, attribution=attribution, **style,
        )

    def add_raster(self, source, indexes=None, colormap=None, vmin=None, vmax=None, nodata=None,
                   layer_name=None, zoom_to_layer=True, visible=True, opacity=1.0, attribution=None,
                   **style) -> RasterTileLayer:
        """Show a raster on the map and return its :class:`RasterTileLayer`.

        Args:
            source: local path, ``http(s)://``/``s3://`` URL, open rasterio dataset,
                numpy array (with ``crs=`` and ``transform=`` keywords; shape (rows, cols)
                or (bands, rows, cols); dtype kept, NaN is nodata), xarray DataArray
                with a rioxarray CRS, or a STAC item (``pystac.Item`` or its dict; a
                list of same-date items is one mosaic) with ``assets=["red", "nir"]``:
                the assets are read as the bands of one raster, each with its own
                nodata and ``raster:scale``/``raster:offset`` (``unscale=False`` keeps
                stored values), coarser assets resampled to the finest
                (``resolution="lowest"`` for the coarsest); ``expression`` and the
                inspector use the asset names: ``"(nir-red)/(nir+red)"``.
            indexes: 1-based band index (int) or ``[r, g, b]``; default bands 1-3 of a
                multi-band raster, band 1 otherwise.
            colormap: matplotlib name (``"RdYlGn"``, ``"viridis_r"``), a
                ``matplotlib.colors.Colormap``, a list of colours, or ``{value: colour}``
                for categorical data (exact colours, no stretch, nearest resampling).
                Single band only.  A paletted TIFF uses its own colour table by default.
            vmin, vmax: stretch range in data units (one value, or one per band);
                default from ``stretch=`` (below): 8-bit RGB(A) as it is (0..255),
                else the 2nd/98th percentiles of the band computed once from an overview.
                Colours are those of ``matplotlib.pyplot.imshow(data, cmap=colormap,
                vmin=vmin, vmax=vmax)``, with a Colormap's under/over/bad colours.
            nodata: replaces the file's nodata value; must fit the dtype.
            layer_name: name in the layers control (made unique on this map).
            zoom_to_layer: fit the map to the raster's bounds.
            visible, opacity, attribution: layer options.
            **style: ``stretch="percentile"|"minmax"|"none"`` (how a missing vmin/vmax
                is filled; ``"none"``: the integer dtype's range),
                ``expression="(b4-b1)/(b4+b1)"`` (band math in float),
                ``resampling="bilinear"``, ``tile_size=512``, ``crs=``/``transform=``
                for arrays.

        Raises (before anything changes on the map): ``SourceNotFoundError`` (missing
        file, HTTP 404), ``SourceIsDirectoryError``, ``InvalidSourceError`` (empty,
        truncated, not georeferenced, a CRS of another planet), ``StyleError`` (bad indexes, vmin >= vmax,
        unknown colormap, nodata outside the dtype), ``AuthenticationError`` (HTTP
        401/403: log in to the provider), ``SourceTimeoutError`` (no answer).
        """
        layer = self.create_raster_layer(
            source, indexes=indexes, colormap=colormap, vmin=vmin, vmax=vmax, nodata=nodata,
            layer_name=layer_name, visible=visible, opacity=opacity, attribution=attribution, **style,
        )
        return self.put_on_map(layer, zoom_to_layer)

    def put_on_map(self, layer: RasterTileLayer, zoom_to_layer: bool = True) -> RasterTileLayer:
        """Add a registered raster layer (its source is released if that fails) and
        optionally fit the view to its bounds first, so that the browser's first tile
        requests are those of the final view."""
        if zoom_to_layer:
            self.zoom_to_bounds(layer.info["bounds"])
        try:
            self.add(layer)
        except Exception:
            layer.release()
            raise
        return layer

    def add_dataset(self, store, keys=None, zoom_to_layer=True, **key_values_and_style) -> RasterTileLayer:
        """Show one dataset of a Terracotta key store and return its :class:`RasterTileLayer`.

        Args:
            store: a :class:`~leafmap_tiles.store.KeyStore` (``store.open(...)``).
            keys: key values in key order (a sequence) or ``{key: value}``; may be
                partial when ``**key_values_and_style`` gives the rest.
            zoom_to_layer: fit the map to the dataset.
            **key_values_and_style: ``<key name>=value`` for any key, and the style:
                ``colormap`` (matplotlib or Terracotta name such as ``"rdylgn"``, or
                ``{value: colour}``), ``vmin``/``vmax`` (numbers, or ``"p2"``-style
                percentiles of the store's metadata; default: the dataset's range),
                ``layer_name``, ``visible``, ``opacity``, ``attribution``,
                ``resampling``, ``tile_size``.

        Band 1 of the dataset's file is shown, as Terracotta does.  Raises
        ``DatasetNotFoundError`` (no match), ``StoreError`` (several match),
        ``InvalidKeyError`` and the errors of :meth:`add_raster`.
        """
        from leafmap_tiles.map.datasets import add_dataset

        return add_dataset(self, store, keys, zoom_to_layer=zoom_to_layer, **key_values_and_style)

    def dataset_layers(self, store, **fixed_keys_and_style) -> dict:
        """Layers of every dataset matching the fixed key values, one key left free:
        ``{free key value: RasterTileLayer}`` in key-value order, not added to the map,
        with one common stretch (default: minimum and maximum over their ranges).
        Feed it to :meth:`add_time_slider`, e.g.
        ``m.add_time_slider(m.dataset_layers(ks, sensor="S2", band="ndvi", colormap="RdYlGn"))``.
        Style arguments as for :meth:`add_dataset`."""
        from leafmap_tiles.map.datasets import dataset_layers

        return dataset_layers(self, store, **fixed_keys_and_style)

    def add_tile_layer(self, url: str, name: str | None = None, attribution: str | None = None,
                       opacity: float = 1.0, visible: bool = True, **kwargs) -> ipyleaflet.TileLayer:
        """Add an XYZ tile layer from a URL template (``.../{z}/{x}/{y}.png``)."""
        if not isinstance(url, str) or not all(k in url for k in ("{z}", "{x}", "{y}")):
            raise StyleError(f"url must be an XYZ template containing {{z}}, {{x}} and {{y}}, got {url!r}")
        layer = ipyleaflet.TileLayer(
            url=url, name=self._unique_name(name or "Tile layer"), attribution=attribution,
            opacity=opacity, visible=visible, **kwargs,
        )
        self.add(layer)
        return layer

    # ------------------------------------------------- leafmap-compatible names
    def add_basemap(self, basemap="HYBRID", show: bool = True, **kwargs) -> ipyleaflet.TileLayer:
        """Add a basemap on top of the layers (as leafmap does) and return it:
        ``basemap`` is a leafmap/xyzservices name (``"OpenTopoMap"``,
        ``"Esri.WorldImagery"``, ``"HYBRID"`` ...), an ``xyzservices.TileProvider`` or an
        XYZ URL template; ``show`` its visibility; ``**kwargs`` go to the TileLayer.
        Raises ``StyleError`` for an unknown name (listing the closest)."""
        from leafmap_tiles.map.basemaps import basemap_layer

        layer = basemap_layer(basemap, visible=bool(show), **kwargs)
        if layer in self.layers:
            return layer
        names = {getattr(l, "name", None) for l in self.layers}
        if layer.name in names and any(getattr(l, "url", None) == layer.url for l in self.layers):
            return next(l for l in self.layers if getattr(l, "url", None) == layer.url)
        self.add(layer)
        return layer

    def set_basemap(self, basemap) -> ipyleaflet.TileLayer | None:
        """Replace the base layer (the bottom one) by ``basemap`` (as
        :meth:`add_basemap`; ``None`` removes it) and return the new one."""
        from leafmap_tiles.map.basemaps import basemap_layer

        new = None if basemap is None else basemap_layer(basemap)
        layers = [l for l in self.layers if not getattr(l, "base", False)]
        if new is not None:
            new.base = True
            layers.insert(0, new)
        self.layers = tuple(layers)
        return new

    def add_cog_layer(self, url, name="Untitled", attribution="", opacity=1.0, shown=True, bands=None,
                      titiler_endpoint=None, zoom_to_layer=True, **kwargs) -> RasterTileLayer:
        """leafmap's ``add_cog_layer``: a COG URL or path drawn by our tile server (no
        TiTiler needed; ``titiler_endpoint`` is ignored).  ``bands``: 1-based band
        numbers; leafmap's ``rescale="0,255"`` and ``colormap_name=`` are understood;
        other keywords as for :meth:`add_raster`."""
        from leafmap_tiles.map.compat import leafmap_style

        style = leafmap_style(kwargs)
        return self.add_raster(url, indexes=bands if bands is not None else style.pop("indexes", None),
                               layer_name=None if name == "Untitled" else name,
                               attribution=attribution or None, opacity=opacity, visible=shown,
                               zoom_to_layer=zoom_to_layer, **style)

    def add_stac_layer(self, url=None, collection=None, item=None, assets=None, bands=None,
                       titiler_endpoint=None, name="STAC Layer", attribution="", opacity=1.0, shown=True,
                       fit_bounds=True, **kwargs) -> RasterTileLayer:
        """leafmap's ``add_stac_layer``: ``url`` (a STAC item's JSON URL/path) or
        ``item`` (a ``pystac.Item``), ``assets`` (or leafmap's older ``bands``) such as
        ``["red", "green", "blue"]`` or ``["red", "nir"]`` with
        ``expression="(nir-red)/(nir+red)"``; leafmap's ``rescale``/``colormap_name``
        are understood.  Assets are read as bands of one raster (see
        :meth:`add_raster`).  ``collection`` with an item id needs a STAC API: give the
        ``pystac.Item`` instead.  Raises ``TypeError`` when neither url nor item is given."""
        from leafmap_tiles.map.compat import leafmap_style

        source = item if item is not None and not isinstance(item, str) else url
        if source is None or (isinstance(item, str) and url is None):
            raise TypeError("add_stac_layer needs url= (a STAC item's JSON) or item= (a pystac.Item)")
        if isinstance(source, str):
            from leafmap_tiles.providers.assets import as_item

            source = as_item(source)
        style = leafmap_style(kwargs)
        return self.add_raster(source, assets=assets if assets is not None else bands,
                               layer_name=None if name == "STAC Layer" else name,
                               attribution=attribution or None, opacity=opacity, visible=shown,
                               zoom_to_layer=fit_bounds, **style)

    def split_map(self, left_layer="OpenTopoMap", right_layer="Esri.WorldImagery", left_args=None, right_args=None,
                  left_label=None, right_label=None, left_position="bottomleft", right_position="bottomright",
                  add_close_button=False, **kwargs):
        """Compare two layers with a draggable divider (leafmap's ``split_map``) and
        return the :class:`~leafmap_tiles.map.split.SplitMap`.  Each side is a layer, a
        basemap name, a raster path/URL/STAC item (styled with ``left_args`` /
        ``right_args``, as for :meth:`add_raster`), or a date label of a time slider
        on this map (that frame).  ``left_label``/``right_label`` are shown at
        ``left_position``/``right_position``."""
        from leafmap_tiles.map.split import split_map

        return split_map(self, left_layer, right_layer, left_args=left_args, right_args=right_args,
                         left_label=left_label, right_label=right_label, left_position=left_position,
                         right_position=right_position, add_close_button=add_close_button, **kwargs)

    def add_legend(self, title="Legend", legend_dict=None, labels=None, colors=None, position="bottomright",
                   builtin_legend=None, layer_name=None, layer=None, **kwargs):
        """A legend of coloured boxes (leafmap's ``add_legend``): ``legend_dict``
        ``{label: colour}`` or ``labels`` + ``colors`` (names, ``"#rrggbb"`` or RGB
        tuples); with ``layer=`` (or ``layer_name=``) of a paletted/categorical raster,
        its classes (values present, with the layer's class names).  Returns the
        :class:`~leafmap_tiles.map.colorbar.Colorbar` that draws it."""
        from leafmap_tiles.map.legend import add_legend

        return add_legend(self, title=title, legend_dict=legend_dict, labels=labels, colors=colors,
                          position=position, builtin_legend=builtin_legend, layer_name=layer_name,
                          layer=layer, **kwargs)

    def find_layer(self, name: str):
        """The layer called ``name`` on this map, else None (as leafmap's)."""
        for layer in self.layers:
            if getattr(layer, "name", None) == name:
                return layer
        return None

    # ------------------------------------------------------- time, legends
    def add_time_slider(self, layers, labels=None, time_interval: float = 1.0, position: str = "bottomright",
                        slider_length: str = "150px", zoom_to_layer: bool = False, preload: int | None = None,
                        **style):
        """Step through ``layers`` with a slider and Play/Pause buttons; returns the
        :class:`~leafmap_tiles.map.time_slider.TimeSlider`.

        ``layers``: ``{label: TileLayer}``, a list of TileLayers, a list of sources
        (paths, URLs, arrays ... as for :meth:`add_raster`, styled with ``**style``),
        ``{label: source}``, a folder (``"rasters/"``: its ``.tif``/``.tiff``/``.vrt``
        files in name order) or a glob pattern (``"rasters/*_ndvi.tif"``), or a list
        of STAC items (one frame per date, same-date items mosaicked; ``assets=``
        and ``expression=`` as for :meth:`add_raster`).  Labels default to the dict keys, else to the date in
        each file or layer name (``YYYYMMDD``, ``YYYY-MM-DD``, ``YYYY``).  The inputs
        are not changed (layers given are restored when the slider closes).  Play
        advances every ``time_interval`` seconds and loops, each frame on screen that
        long once its tiles are drawn (Play waits for them); one timer thread, stopped
        by ``slider.close()`` or ``m.close()``.  Frame changes never blank the map: the
        old frame stays until the new one's tiles are in, and the browser loads the
        frames ahead (all of them for series of up to ``preload`` frames, default 24;
        else 3 on each side).  ``zoom_to_layer`` fits the view to all frames.  Clicking
        the map then plots the pixel's time series; ``slider.values_at(lon, lat)``
        returns it.  ``slider.series(polygon)`` gives a polygon's statistics per date
        (a DataFrame) and ``slider.add_draw_control()`` plots them for a polygon drawn
        on the map."""
        from leafmap_tiles.map.time_slider import add_time_slider
        from leafmap_tiles.map.sources import slider_input

        layers, style = slider_input(self, layers, style)
        ts = add_time_slider(self, layers, labels=labels, time_interval=time_interval, position=position,
                             slider_length=slider_length, zoom_to_layer=zoom_to_layer, preload=preload, **style)
        self._time_sliders.append(ts)
        self._close_hooks.append(ts.close)
        return ts

    def _forget_time_slider(self, ts) -> None:
        if ts in self._time_sliders:
            self._time_sliders.remove(ts)
        if ts.close in self._close_hooks:
            self._close_hooks.remove(ts.close)

    @property
    def time_sliders(self) -> list:
        """The time sliders on this map."""
        return list(self._time_sliders)

    def add_colorbar(self, layer=None, colormap=None, vmin=None, vmax=None, label=None, position="bottomright",
                     orientation="horizontal", scale=None, offset=None, class_names=None, **kwargs):
        """Add a colorbar (matplotlib-drawn) and return its
        :class:`~leafmap_tiles.map.colorbar.Colorbar` (``tick_labels``, ``png``, ``control``).

        With ``layer=`` (a raster layer or a time slider) the colormap and the range
        come from the layer's style as its tiles use it; ticks are in physical units
        when the layer has a scale/offset (``layer.scale``/``layer.offset`` from STAC,
        else the file's tags), or give ``scale=``/``offset=``.  A ``{value: colour}``
        colormap draws a legend; ``class_names={value: name}`` names its classes.
        A time slider gets one colorbar for all frames, removed with the slider."""
        from leafmap_tiles.map.colorbar import add_colorbar

        return add_colorbar(self, layer=layer, colormap=colormap, vmin=vmin, vmax=vmax, label=label,
                            position=position, orientation=orientation, scale=scale, offset=offset,
                            class_names=class_names, **kwargs)

    def zoom_to_bounds(self, bounds, max_zoom: int = 22) -> None:
        """Centre and zoom the map on (west, south, east, north) EPSG:4326 bounds so that
        they fill the map (zooming past the raster's native resolution when it is small;
        tiles are then upscaled).  The map's size is taken from its layout when given in
        px (``layout.width``/``layout.height``), else :data:`view.DEFAULT_SIZE`."""
        center, zoom = view.fit(bounds, size=view.map_size(self), max_zoom=max_zoom)
        with self.hold_sync():
            self.center = center
            self.zoom = zoom

    def _on_layers_change(self, change) -> None:
        old = {l.model_id: l for l in change["old"] if isinstance(l, RasterTileLayer)}
        new = {l.model_id for l in change["new"]}
        for mid, layer in old.items():
            if mid not in new and layer.release_on_remove and not _on_another_map(layer, self):
                layer.release()
        for layer in change["new"]:
            if isinstance(layer, RasterTileLayer) and layer.model_id not in old:
                layer.ensure_registered()  # removed earlier and added again

    # ---------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Release this map's sources and close the widget.  The shared tile server
        stops when no open map and no registered source remain."""
        if getattr(self, "_closed", True):  # closed, or its constructor raised
            return
        self._closed = True
        for hook in list(self._close_hooks):
            try:
                hook()
            except Exception:
                pass
        for layer in list(self.layers) + self._side_layers:
            if isinstance(layer, RasterTileLayer) and not _on_another_map(layer, self):
                layer.release()
        _open_maps.discard(self)
        server = self._server
        if server is not None:
            server.remove_listener(self._on_server_moved)
            if not any(not m._closed for m in list(_open_maps)) and not server.source_ids:
                server.close()
        super().close()


def _on_another_map(layer, this) -> bool:
    """Whether ``layer`` is also on another open map (then it keeps its source)."""
    return any(m is not this and not m._closed and layer in m.layers for m in list(_open_maps))

"""A small style editor for a raster layer in the layer panel (as leafmap's gear):
colormap and range, applied with :meth:`RasterTileLayer.restyle`; plus zoom-to-layer
and remove buttons."""

from __future__ import annotations

import html

import ipywidgets

COLORMAPS = ["viridis", "magma", "inferno", "plasma", "cividis", "gray", "terrain", "RdYlGn", "RdBu", "Spectral",
             "coolwarm", "YlGn", "Blues", "Greens"]


class StyleEditor:
    """``box`` (hidden until ``gear`` is pressed): ``colormap`` drop-down, ``vmin`` /
    ``vmax`` fields, ``apply`` button and a ``message`` line for errors; ``zoom`` and
    ``remove`` buttons act on the layer's map."""

    def __init__(self, m, layer):
        self.map, self.layer = m, layer
        small = dict(layout=ipywidgets.Layout(width="28px", height="26px", padding="0"))
        self.gear = ipywidgets.ToggleButton(value=False, icon="gear", tooltip="Style", **small)
        self.zoom = ipywidgets.Button(icon="search-plus", tooltip="Zoom to layer", **small)
        self.remove = ipywidgets.Button(icon="trash", tooltip="Remove layer", **small)
        single = self._single()
        current = layer.colormap if isinstance(layer.colormap, str) else None
        options = ([current] if current and current not in COLORMAPS else []) + COLORMAPS
        self.colormap = ipywidgets.Dropdown(options=options, value=current if current else None,
                                            description="colormap", disabled=not single,
                                            layout=ipywidgets.Layout(width="230px"))
        vmin = (layer.stretch.get("vmin") or [0.0])[0]
        vmax = (layer.stretch.get("vmax") or [1.0])[0]
        self.vmin = ipywidgets.FloatText(value=vmin, description="vmin", layout=ipywidgets.Layout(width="230px"))
        self.vmax = ipywidgets.FloatText(value=vmax, description="vmax", layout=ipywidgets.Layout(width="230px"))
        self.apply = ipywidgets.Button(description="Apply", layout=ipywidgets.Layout(width="80px"))
        self.message = ipywidgets.HTML()
        self.box = ipywidgets.VBox([self.colormap, self.vmin, self.vmax, ipywidgets.HBox([self.apply, self.message])],
                                   layout=ipywidgets.Layout(display="none", padding="2px 0 4px 10px"))
        self.gear.observe(self._on_gear, names="value")
        self.apply.on_click(self._on_apply)
        self.zoom.on_click(self._on_zoom)
        self.remove.on_click(self._on_remove)

    def _single(self) -> bool:
        style = self.layer.style or {}
        if style.get("expression"):
            return True
        idx = str(style.get("indexes", "")).split(",") if style.get("indexes") else None
        count = (self.layer.info or {}).get("visible_count", 1)
        return (len(idx) == 1) if idx else count == 1

    def _on_gear(self, change) -> None:
        self.box.layout.display = "flex" if change["new"] else "none"

    def _on_apply(self, _=None) -> None:
        """Restyle the layer with the editor's values (errors shown, layer unchanged)."""
        kw = {}
        n = len(self.layer.stretch.get("vmin") or [0])
        kw["vmin"] = [self.vmin.value] * n if n > 1 else self.vmin.value
        kw["vmax"] = [self.vmax.value] * n if n > 1 else self.vmax.value
        if self._single() and self.colormap.value and not self.layer.palette:
            kw["colormap"] = self.colormap.value
        try:
            self.layer.restyle(**kw)
            self.message.value = ""
        except Exception as exc:  # shown, never raised into the widget callback
            self.message.value = f"<span style='color:#b00'>{html.escape(str(exc))}</span>"

    def _on_zoom(self, _=None) -> None:
        info = self.layer.info or {}
        if "bounds" in info:
            self.map.zoom_to_bounds(info["bounds"], max_zoom=int(info.get("maxzoom", 18)))

    def _on_remove(self, _=None) -> None:
        if self.layer in self.map.layers:
            self.map.remove(self.layer)

    def close(self) -> None:
        for w in (self.gear, self.zoom, self.remove, self.colormap, self.vmin, self.vmax, self.apply,
                  self.message, self.box):
            w.close()

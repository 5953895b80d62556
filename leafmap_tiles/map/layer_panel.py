"""The map's layer control: a checkbox and an opacity slider per layer, linked both
ways to the layer's ``visible``/``opacity`` (Leaflet's own layers control changes the
browser only, so the kernel would never learn that a layer was switched off)."""

from __future__ import annotations

import ipywidgets
from ipyleaflet import WidgetControl


class LayerPanel:
    """A collapsible panel listing the map's layers, top layer first.

    ``rows`` maps each listed layer to its ``(checkbox, opacity slider)``; the
    ``toggle`` button shows or hides the list."""

    def __init__(self, m, position: str = "topright", expanded: bool = False):
        self.map = m
        self.toggle = ipywidgets.ToggleButton(value=expanded, icon="bars", tooltip="Layers",
                                              layout=ipywidgets.Layout(width="34px", height="30px", padding="0"))
        self.list = ipywidgets.VBox(layout=ipywidgets.Layout(display="flex" if expanded else "none",
                                                             max_height="300px", overflow="auto"))
        self.box = ipywidgets.VBox([self.toggle, self.list], layout=ipywidgets.Layout(align_items="flex-end"))
        self.control = WidgetControl(widget=self.box, position=position)
        self.rows: dict = {}
        self.editors: dict = {}
        self.toggle.observe(self._on_toggle, names="value")
        m.observe(self._rebuild, names="layers")
        self._rebuild()

    @property
    def expanded(self) -> bool:
        return self.toggle.value

    @expanded.setter
    def expanded(self, value: bool) -> None:
        self.toggle.value = bool(value)

    def _on_toggle(self, change) -> None:
        self.list.layout.display = "flex" if change["new"] else "none"

    def row(self, layer):
        """(checkbox, opacity slider) of ``layer``."""
        return self.rows[layer.model_id][1:3]

    def _rebuild(self, change=None) -> None:
        old, self.rows = self.rows, {}
        children = []
        for layer in reversed(self.map.layers):
            if not (layer.has_trait("visible") and layer.has_trait("opacity")):
                continue
            row = old.pop(layer.model_id, None) or self._make_row(layer)
            self.rows[layer.model_id] = row
            children.append(row[3])
        self.list.children = children
        for row in old.values():
            self._drop_row(row)

    def _make_row(self, layer):
        cb = ipywidgets.Checkbox(value=layer.visible, description=layer.name or "layer", indent=False,
                                 layout=ipywidgets.Layout(width="150px"))
        sl = ipywidgets.FloatSlider(value=layer.opacity, min=0.0, max=1.0, step=0.05, readout=False,
                                    tooltip="opacity", layout=ipywidgets.Layout(width="100px"))
        links = (ipywidgets.link((cb, "value"), (layer, "visible")), ipywidgets.link((sl, "value"), (layer, "opacity")))
        if getattr(layer, "source_id", None) is not None:  # our raster: style editor, zoom, remove
            from leafmap_tiles.map.style_editor import StyleEditor

            ed = StyleEditor(self.map, layer)
            self.editors[layer.model_id] = ed
            box = ipywidgets.VBox([ipywidgets.HBox([cb, sl, ed.gear, ed.zoom, ed.remove]), ed.box])
            return (layer, cb, sl, box, links)
        return (layer, cb, sl, ipywidgets.HBox([cb, sl]), links)

    def editor(self, layer):
        """The :class:`~leafmap_tiles.map.style_editor.StyleEditor` of a raster layer."""
        return self.editors[layer.model_id]

    def _drop_row(self, row) -> None:
        for link in row[4]:
            link.unlink()
        ed = self.editors.pop(row[0].model_id, None)
        if ed is not None:
            ed.close()
        for w in row[1:4]:
            w.close()

    def close(self) -> None:
        try:
            self.map.unobserve(self._rebuild, names="layers")
        except ValueError:
            pass
        for row in self.rows.values():
            self._drop_row(row)
        self.rows = {}

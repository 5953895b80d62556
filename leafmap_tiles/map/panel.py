"""``Panel``: a small titled box on the map that can be collapsed and closed, for the
inspector's values and the time series (they must never hide the map's centre or its
controls: small, in a corner, out of the way when collapsed or closed)."""

from __future__ import annotations

import ipywidgets
from ipyleaflet import WidgetControl


class Panel:
    """A map control: a header (``title`` label, collapse toggle, close button) over
    ``body`` (any widget).

    ``show(map)`` puts it on the map (expanded); the close button removes it and calls
    ``on_close()``; the collapse toggle hides the body and leaves the header only.
    ``control`` is the ipyleaflet ``WidgetControl``.
    """

    def __init__(self, title: str, body, position: str = "bottomleft", on_close=None, max_width: str = "340px"):
        self.body = body
        self.on_close = on_close
        self.title = ipywidgets.HTML(self._title_html(title), layout=ipywidgets.Layout(flex="1 1 auto"))
        small = dict(layout=ipywidgets.Layout(width="26px", height="22px", padding="0", margin="0 0 0 2px"))
        self.collapse_button = ipywidgets.ToggleButton(value=False, icon="minus", tooltip="Collapse", **small)
        self.close_button = ipywidgets.Button(icon="times", tooltip="Close", **small)
        header = ipywidgets.HBox([self.title, self.collapse_button, self.close_button],
                                 layout=ipywidgets.Layout(align_items="center", width="100%"))
        self.box = ipywidgets.VBox([header, body], layout=ipywidgets.Layout(max_width=max_width, padding="2px 4px"))
        self.control = WidgetControl(widget=self.box, position=position)
        self.map = None
        self.collapse_button.observe(self._on_collapse, names="value")
        self.close_button.on_click(lambda _: self.close())

    @staticmethod
    def _title_html(text: str) -> str:
        import html

        return f"<span style='font-size:12px;font-weight:600;white-space:nowrap'>{html.escape(text)}</span>"

    def set_title(self, text: str) -> None:
        self.title.value = self._title_html(text)

    @property
    def collapsed(self) -> bool:
        return self.collapse_button.value

    @collapsed.setter
    def collapsed(self, value: bool) -> None:
        self.collapse_button.value = bool(value)

    def _on_collapse(self, change) -> None:
        self.body.layout.display = "none" if change["new"] else None
        self.collapse_button.icon = "plus" if change["new"] else "minus"
        self.collapse_button.tooltip = "Expand" if change["new"] else "Collapse"

    @property
    def shown(self) -> bool:
        return self.map is not None and self.control in self.map.controls

    def show(self, m) -> None:
        """Put the panel on map ``m`` (no-op when it is there)."""
        self.map = m
        if self.control not in m.controls:
            m.add(self.control)

    def move(self, position: str) -> None:
        """Put the panel in another corner of the map (``"topleft"``, ``"topright"``,
        ``"bottomleft"``, ``"bottomright"``)."""
        if self.control.position == position:
            return
        shown = self.shown
        self.hide()
        self.control.position = position
        if shown:
            self.show(self.map)

    def hide(self) -> None:
        """Take the panel off its map (without calling ``on_close``)."""
        if self.map is not None and self.control in self.map.controls:
            self.map.remove(self.control)

    def close(self) -> None:
        """What the close button does: hide, then ``on_close()``."""
        self.hide()
        if self.on_close is not None:
            self.on_close()

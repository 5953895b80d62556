"""Click inspector: the values of every raster layer at the clicked point, per band,
in physical units when a scale/offset is known, "nodata" for nodata.  With time
sliders on the map the same click also plots each slider's time series.  One batch
request to the tile server per click."""

from __future__ import annotations

import html
import logging

import ipywidgets

from leafmap_tiles.map import values as _values

log = logging.getLogger("leafmap_tiles.map")


class Inspector:
    """Attached to a map by ``Map(inspector=True)`` (the default).

    After a click: ``last`` is ``{"lon", "lat", "layers": [{"name", "layer",
    "inside", "values": [(band, value or None), ...]}, ...]}``; ``html`` (an
    ``ipywidgets.HTML``) shows it in ``panel`` (a closable, collapsible box in a top
    corner away from the click, see :meth:`corner_for`; ``control`` its WidgetControl)
    and ``marker`` (an ipyleaflet
    ``CircleMarker``) marks the clicked point.  Closing the panel hides the marker and
    every time series panel too."""

    def __init__(self, m, position: str = "topright"):
        from leafmap_tiles.map.panel import Panel

        self.map = m
        self.html = ipywidgets.HTML(layout=ipywidgets.Layout(max_height="160px", overflow="auto"))
        self.panel = Panel("Values", self.html, position=position, on_close=self._on_panel_closed)
        self.control = self.panel.control
        self.marker = None
        self.last: dict | None = None
        self.enabled = True
        # callables (lon, lat) -> True for clicks that are not for the inspector (e.g. the
        # vertices of a polygon being drawn with a draw control); one with an
        # ``undo_click(lon, lat)`` method is also told of each click it let through, once
        # shown (the click's query may end after the polygon arrived)
        self.click_filters: list = []
        m.on_interaction(self._on_interaction)

    def _on_interaction(self, **event) -> None:
        if not self.enabled or event.get("type") != "click":
            return
        coords = event.get("coordinates") or ()
        if len(coords) != 2:
            return
        lat, lon = float(coords[0]), float(coords[1])
        if any(f(lon, lat) for f in list(self.click_filters)):
            return
        try:
            self.click(lon, lat)
            for f in list(self.click_filters):  # a filter learnt meanwhile that the click was not ours
                undo = getattr(f, "undo_click", None)
                if undo is not None:
                    undo(lon, lat)
        except Exception as exc:  # a callback must not raise into the comm
            log.exception("inspector failed")
            self.html.value = f"<b>inspector</b>: {html.escape(type(exc).__name__)}: {html.escape(str(exc))}"
            self._show()

    def _targets(self):
        """[(name, layer, quantity)] of raster layers on the map, top first; a time
        slider contributes the frame it shows (its quantity names the values)."""
        out = []
        for layer in reversed(self.map.layers):
            if getattr(layer, "source_id", None) is not None:
                out.append((layer.name, layer, None))
        for ts in self.map.time_sliders:
            if getattr(ts.current_layer, "source_id", None) is not None:
                out.append((f"{ts.group.name} [{ts.current_label}]", ts.current_layer, ts.quantity))
        return out

    def click(self, lon: float, lat: float) -> dict:
        """What a click at (lon, lat) EPSG:4326 does: query every raster layer and
        every time-slider frame in one request, mark the point, show the values and
        the series."""
        targets = self._targets()
        sliders = [ts for ts in self.map.time_sliders if not ts.closed]
        layers = [l for _, l, _ in targets] + [f for ts in sliders for f in ts.layers]
        if not any(getattr(l, "source_id", None) for l in layers):
            return {"lon": lon, "lat": lat, "layers": []}  # nothing to inspect: no box, no request
        results = _values.query(layers, lon, lat)
        rows = []
        for (name, layer, quantity), res in zip(targets, results):
            inside = bool(res and res.get("inside"))
            rows.append({"name": name, "layer": layer, "inside": inside, "quantity": quantity,
                         "units": _values.units_of(layer),
                         "values": _values.band_values(layer, res) if inside else []})
        self.last = {"lon": lon, "lat": lat, "layers": rows}
        self.html.value = render(self.last)
        self.panel.set_title(f"lat {lat:.5f}, lon {lon:.5f}")
        corner = self.corner_for(lon)
        pos = len(targets)
        for ts in sliders:  # the series first: it sits above the values in the corner
            n = len(ts.layers)
            ts.series_panel.move(corner)
            ts.show_time_series(lon, lat, results=results[pos:pos + n])
            pos += n
        self.panel.move(corner)
        self._show()
        self._mark(lon, lat)
        return self.last

    def corner_for(self, lon: float) -> str:
        """Where the panels go for a click at ``lon``: the top corner on the other side of
        the map's centre (top right for a click left of it, under the zoom buttons at the
        top left for one right of it), so that they cover neither the clicked point, nor
        the centre, nor the slider and colorbar at the bottom right."""
        try:
            centre_lon = float(self.map.center[1])
        except (TypeError, ValueError, IndexError):
            return "topright"
        d = (lon - centre_lon + 180.0) % 360.0 - 180.0
        return "topleft" if d > 0 else "topright"

    def _mark(self, lon: float, lat: float) -> None:
        from ipyleaflet import CircleMarker

        if self.marker is None:
            self.marker = CircleMarker(location=(lat, lon), radius=6, color="#e6007e", weight=2, opacity=1.0,
                                       fill_color="#ffffff", fill_opacity=0.5, name="Clicked point")
        else:
            self.marker.location = (lat, lon)
            self.marker.opacity, self.marker.fill_opacity = 1.0, 0.5
        if self.marker not in self.map.layers:
            self.map.add(self.marker)

    def _hide_marker(self) -> None:
        m = self.marker
        if m is None or m not in self.map.layers:
            return
        if self.map.layers[-1] is m:
            self.map.remove(m)  # the last layer: removing it leaves every other layer as it is drawn
        else:  # removing it from the middle would make the browser rebuild the layers above it
            m.opacity, m.fill_opacity = 0.0, 0.0

    def _show(self) -> None:
        self.panel.show(self.map)

    def _on_panel_closed(self) -> None:
        self.last = None
        self.html.value = ""
        self._hide_marker()
        for ts in self.map.time_sliders:
            ts.series_panel.close()

    def dismiss(self) -> None:
        """Hide the values box and the marker of the last click (the series panels stay)."""
        self.last = None
        self.html.value = ""
        self.panel.hide()
        self._hide_marker()

    def forget(self, layers) -> None:
        """Hide the values box when it shows any of ``layers`` (they left the map)."""
        ids = {getattr(l, "model_id", None) for l in layers}
        if self.last and any(getattr(r["layer"], "model_id", None) in ids for r in self.last["layers"]):
            self.last = None
            self.html.value = ""
            self.panel.hide()
            self._hide_marker()

    def close(self) -> None:
        self.enabled = False
        try:
            self.map.on_interaction(self._on_interaction, remove=True)
        except Exception:
            pass


def render(result: dict) -> str:
    """HTML table of a click's values: one row per layer (its name), the values
    rounded for reading (:func:`values.format_value`), with units when known; bands
    are named (``b1: 8, b2: 69``) when a layer shows several, an expression's value
    is given as the layer's quantity (e.g. NDVI) or alone."""
    parts = ["<div style='font-size:12px;line-height:1.35'>"]
    if not result["layers"]:
        parts.append("<i>no raster layer</i>")
    for row in result["layers"]:
        parts.append(f"<div><b>{html.escape(str(row['name']))}</b>")
        if not row["inside"]:
            parts.append(" <i>outside</i></div>")
            continue
        units = row.get("units")
        suffix = f" {html.escape(units)}" if units else ""
        vals = row["values"]
        layer = row["layer"]
        names = getattr(layer, "class_names", None) or {}  # categorical data: "3 (Forest)"

        def shown(v):
            text = html.escape(_values.format_value(v))
            return text + (f" ({html.escape(str(names[v]))})" if v is not None and v in names else "")

        expression = (getattr(layer, "style", None) or {}).get("expression")
        if len(vals) == 1 and (expression or row.get("quantity")):
            v = vals[0][1]
            q = row.get("quantity")
            lead = f"{html.escape(q)}: " if q else ""
            parts.append(f": {lead}{shown(v)}{suffix if v is not None else ''}</div>")
            continue
        cells = ", ".join(f"{html.escape(b)}: {shown(v)}" for b, v in vals)
        parts.append(f"<br>&nbsp;&nbsp;{cells}{suffix}</div>")
    parts.append("</div>")
    return "".join(parts)

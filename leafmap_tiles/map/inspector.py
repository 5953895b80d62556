"""Click inspector: the values of every raster layer at the clicked point, per band,
in physical units when a scale/offset is known, "nodata" for nodata.  With time
sliders on the map the same click also plots each slider's time series.  One batch
request to the tile server per click."""

from __future__ import annotations

import html
import logging

import ipywidgets
from ipyleaflet import WidgetControl

from leafmap_tiles.map import values as _values

log = logging.getLogger("leafmap_tiles.map")


class Inspector:
    """Attached to a map by ``Map(inspector=True)`` (the default).

    After a click: ``last`` is ``{"lon", "lat", "layers": [{"name", "layer",
    "inside", "values": [(band, value or None), ...]}, ...]}`` and ``html`` (a
    ``ipywidgets.HTML`` in ``control``) shows it."""

    def __init__(self, m, position: str = "bottomleft"):
        self.map = m
        self.html = ipywidgets.HTML()
        self.control = WidgetControl(widget=self.html, position=position)
        self.last: dict | None = None
        self.enabled = True
        m.on_interaction(self._on_interaction)

    def _on_interaction(self, **event) -> None:
        if not self.enabled or event.get("type") != "click":
            return
        coords = event.get("coordinates") or ()
        if len(coords) != 2:
            return
        lat, lon = float(coords[0]), float(coords[1])
        try:
            self.click(lon, lat)
        except Exception as exc:  # a callback must not raise into the comm
            log.exception("inspector failed")
            self.html.value = f"<b>inspector</b>: {html.escape(type(exc).__name__)}: {html.escape(str(exc))}"
            self._show()

    def _targets(self):
        """[(name, layer)] of raster layers on the map, top first; a time slider
        contributes the frame it shows."""
        out = []
        for layer in reversed(self.map.layers):
            if getattr(layer, "source_id", None) is not None:
                out.append((layer.name, layer))
        for ts in self.map.time_sliders:
            if getattr(ts.current_layer, "source_id", None) is not None:
                out.append((f"{ts.group.name} [{ts.current_label}]", ts.current_layer))
        return out

    def click(self, lon: float, lat: float) -> dict:
        """What a click at (lon, lat) EPSG:4326 does: query every raster layer and
        every time-slider frame in one request, show the values and the series."""
        targets = self._targets()
        sliders = [ts for ts in self.map.time_sliders if not ts.closed]
        layers = [l for _, l in targets] + [f for ts in sliders for f in ts.layers]
        if not any(getattr(l, "source_id", None) for l in layers):
            return {"lon": lon, "lat": lat, "layers": []}  # nothing to inspect: no box, no request
        results = _values.query(layers, lon, lat)
        rows = []
        for (name, layer), res in zip(targets, results):
            inside = bool(res and res.get("inside"))
            rows.append({"name": name, "layer": layer, "inside": inside,
                         "values": _values.band_values(layer, res) if inside else []})
        self.last = {"lon": lon, "lat": lat, "layers": rows}
        self.html.value = render(self.last)
        self._show()
        pos = len(targets)
        for ts in sliders:
            n = len(ts.layers)
            ts.show_time_series(lon, lat, results=results[pos:pos + n])
            pos += n
        return self.last

    def _show(self) -> None:
        if self.control not in self.map.controls:
            self.map.add(self.control)

    def forget(self, layers) -> None:
        """Hide the values box when it shows any of ``layers`` (they left the map)."""
        ids = {getattr(l, "model_id", None) for l in layers}
        if self.last and any(getattr(r["layer"], "model_id", None) in ids for r in self.last["layers"]):
            self.last = None
            self.html.value = ""
            if self.control in self.map.controls:
                self.map.remove(self.control)

    def close(self) -> None:
        self.enabled = False
        try:
            self.map.on_interaction(self._on_interaction, remove=True)
        except Exception:
            pass


def render(result: dict) -> str:
    """HTML table of a click's values."""
    parts = [f"<div style='font-size:12px;max-width:320px'><b>{result['lat']:.5f}, {result['lon']:.5f}</b>"]
    if not result["layers"]:
        parts.append("<br><i>no raster layer</i>")
    for row in result["layers"]:
        parts.append(f"<br><b>{html.escape(str(row['name']))}</b>")
        if not row["inside"]:
            parts.append(" <i>outside</i>")
            continue
        names = getattr(row["layer"], "class_names", None) or {}  # categorical data: "3 (Forest)"
        cells = ", ".join(f"{html.escape(b)}: {html.escape(_values.format_value(v))}"
                          + (f" ({html.escape(str(names[v]))})" if v is not None and v in names else "")
                          for b, v in row["values"])
        parts.append(f"<br>&nbsp;&nbsp;{cells}")
    parts.append("</div>")
    return "".join(parts)

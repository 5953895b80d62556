"""Basemaps by name, as leafmap names them: xyzservices providers (``"OpenTopoMap"``,
``"Esri.WorldImagery"``, ``"CartoDB.Positron"`` ...; free ones only), and leafmap's
Google names ``"ROADMAP"``, ``"SATELLITE"``, ``"TERRAIN"``, ``"HYBRID"``.  Also the
map controls leafmap users expect: a basemap picker, fullscreen and scale bar."""

from __future__ import annotations

import difflib

import ipyleaflet
import ipywidgets

from leafmap_tiles.errors import StyleError

# leafmap's own names for Google's tiles (same tile URLs as leafmap uses)
GOOGLE = {
    "ROADMAP": ("Google Maps", "m"),
    "SATELLITE": ("Google Satellite", "s"),
    "TERRAIN": ("Google Terrain", "p"),
    "HYBRID": ("Google Hybrid", "y"),
}
# names a user types that xyzservices spells differently
ALIASES = {"openstreetmap": "OpenStreetMap.Mapnik", "osm": "OpenStreetMap.Mapnik",
           "esri": "Esri.WorldImagery", "satellite_esri": "Esri.WorldImagery"}

_providers: dict | None = None


def providers() -> dict:
    """``{name: xyzservices.TileProvider}`` of the free xyzservices providers, by
    their flattened name (``"Esri.WorldImagery"``), as leafmap lists them."""
    global _providers
    if _providers is None:
        import xyzservices

        _providers = dict(sorted(xyzservices.providers.filter(requires_token=False).flatten().items()))
    return _providers


def basemap_names() -> list[str]:
    """Every name :func:`basemap_layer` accepts (Google names first)."""
    return list(GOOGLE) + list(providers())


def _lookup(name: str):
    table = providers()
    if name in table:
        return table[name]
    low = name.lower()
    if low in ALIASES:
        return table[ALIASES[low]]
    for key, prov in table.items():  # case-insensitive; also the provider's own "name"
        if key.lower() == low or str(prov.get("name", "")).lower() == low:
            return prov
    return None


def basemap_layer(basemap, **kwargs) -> ipyleaflet.TileLayer:
    """An ``ipyleaflet.TileLayer`` for ``basemap``: a name (see :func:`basemap_names`;
    case-insensitive), an ``xyzservices.TileProvider``, an XYZ URL template, or a
    ``TileLayer`` (returned as it is).  ``**kwargs`` go to the TileLayer
    (``opacity``, ``visible`` ...).  Raises ``StyleError`` for an unknown name, with
    the closest names."""
    import xyzservices

    if isinstance(basemap, ipyleaflet.TileLayer):
        return basemap
    if isinstance(basemap, str) and all(k in basemap for k in ("{z}", "{x}", "{y}")):
        kwargs.setdefault("name", "Basemap")
        return ipyleaflet.TileLayer(url=basemap, **kwargs)
    if isinstance(basemap, str) and basemap.upper() in GOOGLE:
        title, lyrs = GOOGLE[basemap.upper()]
        kwargs.setdefault("name", title)
        kwargs.setdefault("attribution", "Google")
        kwargs.setdefault("max_zoom", 22)
        return ipyleaflet.TileLayer(url=f"https://mt1.google.com/vt/lyrs={lyrs}&x={{x}}&y={{y}}&z={{z}}", **kwargs)
    if isinstance(basemap, str):
        prov = _lookup(basemap)
        if prov is None:
            import xyzservices

            try:
                keyed = xyzservices.providers.query_name(basemap)
            except ValueError:
                keyed = None
            if keyed is not None:
                raise StyleError(f"basemap {basemap!r} needs an API key: pass "
                                 f"xyzservices.providers.{keyed.name}(apikey='...') instead of its name")
            close = difflib.get_close_matches(basemap, basemap_names(), n=5, cutoff=0.5)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise StyleError(f"unknown basemap {basemap!r}{hint} (leafmap_tiles.map.basemaps.basemap_names() "
                             "lists them all)")
        basemap = prov
    if isinstance(basemap, xyzservices.TileProvider):
        kwargs.setdefault("name", basemap.name)
        kwargs.setdefault("attribution", basemap.html_attribution)
        kwargs.setdefault("max_zoom", int(basemap.get("max_zoom", 22)))
        return ipyleaflet.TileLayer(url=basemap.build_url(), **kwargs)
    raise TypeError(f"basemap must be a name, an xyzservices.TileProvider, a URL template or a TileLayer, "
                    f"got {type(basemap).__name__}")


PICKER_CHOICES = ["OpenStreetMap.Mapnik", "OpenTopoMap", "Esri.WorldImagery", "Esri.WorldTopoMap",
                  "Esri.WorldGrayCanvas", "HYBRID", "SATELLITE", "ROADMAP", "TERRAIN"]


class BasemapPicker:
    """A drop-down (``dropdown``) that replaces the map's base layer; the choices are
    ``choices`` (names of :func:`basemap_names`); "(none)" removes the basemap."""

    def __init__(self, m, choices=None, position: str = "topright"):
        self.map = m
        names = list(choices or PICKER_CHOICES)
        for n in names:
            basemap_layer(n)  # unknown names fail now
        self.dropdown = ipywidgets.Dropdown(options=["(none)"] + names, value=None,
                                            description="", tooltip="Basemap",
                                            layout=ipywidgets.Layout(width="170px"))
        current = [l for l in m.layers if getattr(l, "base", False)]
        if current:
            match = [n for n in names if basemap_layer(n).url == getattr(current[0], "url", None)]
            self.dropdown.value = match[0] if match else None
        self.dropdown.observe(self._on_change, names="value")
        self.control = ipyleaflet.WidgetControl(widget=self.dropdown, position=position)

    def _on_change(self, change) -> None:
        if change["new"] is None:
            return
        self.map.set_basemap(None if change["new"] == "(none)" else change["new"])

    def close(self) -> None:
        self.dropdown.unobserve(self._on_change, names="value")

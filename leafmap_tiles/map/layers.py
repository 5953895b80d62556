"""``RasterTileLayer``: an ``ipyleaflet.TileLayer`` that knows its tile-server source."""

from __future__ import annotations

import ipyleaflet


class RasterTileLayer(ipyleaflet.TileLayer):
    """A TileLayer served by our tile server.

    Python attributes (not synced to the browser): ``source_id``; ``style`` (the
    canonical style parameters in the tile URL); ``info`` (the server's description:
    ``bounds`` (west, south, east, north) EPSG:4326, ``crs``, ``dtype``, ``count``,
    ``nodata``, ``scales``/``offsets`` ...); ``stretch`` (``{"vmin": [...], "vmax":
    [...]}`` actually used); ``colormap`` (what the user gave); ``scale``/``offset``
    (physical units for colorbars, e.g. from STAC ``raster:scale``);
    ``release_on_remove`` (release the source when the layer leaves its map).
    """

    def __init__(self, *, server, source_id: str, style: dict, info: dict, stretch: dict | None = None,
                 colormap=None, statistics=None, palette: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.server = server
        self.source_id = source_id
        self.style = dict(style)
        self.info = info
        self.stretch = stretch or {}
        self.colormap = colormap
        self.statistics = statistics or []
        self.palette = palette
        self.release_on_remove = True
        self.scale = None
        self.offset = None
        self.metadata: dict = {}

    def refresh_url(self) -> None:
        """Rebuild the URL (after the server had to move to another port)."""
        self.url = self.server.tile_url(self.source_id, self.style)

    def release(self) -> None:
        """Release the server-side source; tiles of this layer answer 404 afterwards."""
        if self.server is not None and not self.server.closed:
            self.server.release(self.source_id)

    @property
    def bounds_4326(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in EPSG:4326 (west > east across the antimeridian)."""
        return tuple(self.info["bounds"])  # type: ignore[return-value]

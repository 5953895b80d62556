"""Map layers of STAC items, one per date, for ``Map.add_time_slider``.

A date with several items (neighbouring tiles) is one layer showing them all as a
mosaic (:func:`leafmap_tiles.providers.items.group_by_date`).  Users call
:func:`create_time_layers` as ``stac.create_time_layers`` or through a provider
(``terrascope.create_time_layers``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from leafmap_tiles.providers.access import credentials_for
from leafmap_tiles.providers.items import get_render_params, group_by_date

__all__ = ["create_time_layers", "time_layer_sources"]


def time_layer_sources(items: Iterable[Any], asset_key: str) -> dict[str, dict[str, Any]]:
    """{date: {"urls": [...], "scale", "offset", "nodata"}}: what each date's layer
    shows (all tiles of the date, as a mosaic) with the item's scale/offset/nodata;
    dates whose items lack ``asset_key`` are left out."""
    out: dict[str, dict[str, Any]] = {}
    for date, group in group_by_date(items).items():
        with_asset = [i for i in group if asset_key in i.assets]
        if not with_asset:
            continue
        params = get_render_params(with_asset[0], asset_key)
        out[date] = {"urls": [i.assets[asset_key].href for i in with_asset], **params}
    return out


def create_time_layers(
    items: Iterable[Any],
    asset_key: str | None = None,
    colormap: str | None = "RdYlGn",
    vmin: float | None = None,
    vmax: float | None = None,
    assets: Sequence[str] | str | None = None,
    expression: str | None = None,
    **style: Any,
) -> dict[str, Any]:
    """``{date: RasterTileLayer}`` for ``Map.add_time_slider``, one layer per date
    (``YYYY-MM-DD``) through the kernel's tile server.  A date with several items
    (neighbouring tiles) shows them all as one mosaic.  Each item's nodata overrides
    the file's; its ``raster:scale``/``raster:offset`` travel with the layer
    (``layer.scale``/``layer.offset``) for colorbars in physical units.  Protected
    assets (hosts with credentials) are never cached by the browser.

    ``assets=["red", "nir"]`` with ``expression="(nir-red)/(nir+red)"`` reads several
    assets of each item as the bands of one raster (each asset's nodata, scale/offset
    applied, so the expression is in physical units; ``vmin``/``vmax`` too); see
    :mod:`leafmap_tiles.providers.assets` (``unscale=``, ``resolution=``).  Three
    assets without an expression give an RGB composite (use ``colormap=None``).

    Raises ``TypeError`` without ``asset_key`` or ``assets``, and the errors of
    ``Map.add_raster`` (e.g. ``AuthenticationError`` before login) before any layer
    is returned."""
    from leafmap_tiles.map.layers import make_raster_layer

    if assets is not None or expression is not None:
        from leafmap_tiles.providers import assets as stac_assets

        names = stac_assets.asset_names(assets if assets is not None else asset_key)
        if len(names) > 1 and expression is None and colormap == "RdYlGn":
            colormap = None  # an RGB composite has no colormap
        layers: dict[str, Any] = stac_assets.time_layers(items, assets=names, expression=expression,
                                                         colormap=colormap, vmin=vmin, vmax=vmax, **style)
        return layers
    if asset_key is None:
        raise TypeError("create_time_layers needs asset_key= (one asset) or assets=[...]")

    layers = {}
    try:
        for date, source in time_layer_sources(items, asset_key).items():
            urls = source["urls"]
            layers[date] = make_raster_layer(
                None, urls if len(urls) > 1 else urls[0], name=date, colormap=colormap,
                vmin=vmin, vmax=vmax, nodata=source["nodata"], scale=source["scale"],
                offset=source["offset"], protected=any(credentials_for(u) for u in urls), **style,
            )
    except Exception:
        for layer in layers.values():  # nothing half-made stays registered
            layer.release()
        raise
    return layers

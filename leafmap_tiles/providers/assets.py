"""STAC items as raster sources: one asset, or several assets read as bands.

    m.add_raster(item, assets=["red", "nir"], expression="(nir-red)/(nir+red)",
                 colormap="RdYlGn", vmin=-0.2, vmax=0.9)
    m.add_raster(item, assets=["red", "green", "blue"])          # true colour
    stac.create_time_layers(items, assets=["red", "nir"], expression="(nir-red)/(nir+red)")

Several assets become the bands of one virtual raster (a VRT written by
:func:`leafmap_tiles.client.stack.build_stack`): each asset keeps its own nodata,
its ``raster:scale``/``raster:offset`` are applied (``unscale=True``: the bands and
the expression are in physical units, e.g. reflectance), and assets of coarser
resolution are resampled to the finest one.  The expression names assets; it is
rewritten over ``b1``, ``b2`` ... for the tile server.  Asset URLs get the
credentials of their host only, as any other source.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from leafmap_tiles import _paths
from leafmap_tiles.errors import ProviderError, StyleError
from leafmap_tiles.protocol import members as source_members
from leafmap_tiles.protocol import source_path


def is_item(obj) -> bool:
    """Whether ``obj`` is a ``pystac.Item`` (or a STAC item as a dict)."""
    if type(obj).__name__ == "Item" and hasattr(obj, "assets") and hasattr(obj, "properties"):
        return True
    return isinstance(obj, dict) and obj.get("type") == "Feature" and isinstance(obj.get("assets"), dict)


def as_item(obj):
    """A ``pystac.Item`` from an Item, a STAC item dict, or the URL/path of an item's JSON."""
    import pystac

    if isinstance(obj, pystac.Item):
        return obj
    if isinstance(obj, dict):
        return pystac.Item.from_dict(obj)
    if isinstance(obj, (str, os.PathLike)):
        return pystac.Item.from_file(os.fspath(obj))
    raise TypeError(f"expected a pystac.Item, a STAC item dict or its URL, got {type(obj).__name__}")


def _asset_list(item, assets) -> list[str]:
    if assets is None:
        keys = list(item.assets)
        for k in ("visual", "rendered_preview"):
            if k in keys:
                return [k]
        data = [k for k, a in item.assets.items() if "data" in (a.roles or [])]
        if len(data) == 1:
            return data
        raise StyleError(f"item {item.id} has several assets ({', '.join(keys)}): choose with assets=[...]")
    assets = asset_names(assets)
    missing = [a for a in assets if a not in item.assets]
    if missing:
        raise StyleError(f"item {item.id} has no asset {', '.join(map(repr, missing))}; "
                         f"it has {', '.join(item.assets)}")
    return assets


def asset_names(assets) -> list[str]:
    """``assets`` as a list of names: ``"red"``, ``"red,nir"`` or ``["red", "nir"]``;
    StyleError for anything else."""
    if isinstance(assets, str):
        assets = [a.strip() for a in assets.split(",")]
    if not isinstance(assets, (list, tuple)):
        raise StyleError(f"assets must be asset names such as ['red', 'nir'], got {assets!r}")
    assets = list(assets)
    if not assets or not all(isinstance(a, str) and a for a in assets):
        raise StyleError(f"assets must be asset names such as ['red', 'nir'], got {assets!r}")
    return assets


def _opener(path: str):
    from leafmap_tiles.providers.access import open_raster

    return open_raster(_paths.from_vsicurl(path))


def item_sources(items: Sequence, assets, server, expression=None, unscale: bool = True,
                 resolution: str = "highest", resampling: str = "nearest") -> dict:
    """What a layer of ``items`` (one item, or same-date items shown as a mosaic)
    reads: ``{"path": GDAL path or a list for a mosaic, "expression": over b1..bn or
    None, "band_labels": {"b1": "red", ...}, "nodata", "scale", "offset", "protected",
    "assets"}``.  One asset without an expression is read as it is (its STAC
    nodata/scale/offset travel with the layer); otherwise a VRT per item stacks the
    assets (written in ``server.tmpdir``).  Raises ``StyleError`` for unknown assets
    or expression names, and the errors of opening an asset (e.g.
    ``AuthenticationError``)."""
    from leafmap_tiles.client.stack import band_expression, build_stack
    from leafmap_tiles.providers.access import credentials_for
    from leafmap_tiles.providers.items import get_render_params

    items = [as_item(i) for i in items]
    names = _asset_list(items[0], assets)
    hrefs = [i.assets[a].href for i in items for a in names if a in i.assets]
    protected = any(credentials_for(h) for h in hrefs)
    if len(names) == 1 and expression is None:
        with_asset = [i for i in items if names[0] in i.assets]
        params = get_render_params(with_asset[0], names[0])
        urls = [i.assets[names[0]].href for i in with_asset]
        return {"path": urls if len(urls) > 1 else urls[0], "expression": None,
                "band_labels": {"b1": names[0]}, "protected": protected, "assets": names, **params}
    paths, labels = [], None
    unique = list(dict.fromkeys(names))  # an asset named twice is read once
    for item in items:
        if not all(a in item.assets for a in unique):
            continue
        members = []
        for a in unique:
            p = get_render_params(item, a)
            members.append({"name": a, "path": item.assets[a].href, "nodata": p["nodata"],
                            "scale": p["scale"], "offset": p["offset"]})
        out = build_stack(members, server.tmpdir, resolution=resolution, resampling=resampling,
                          unscale=unscale, opener=_opener)
        paths.append(out["path"])
        labels = labels or out["band_names"]
    if not paths:
        raise StyleError(f"no item has all of the assets {names}")
    expr = band_expression(expression, labels) if expression is not None else None
    band_labels = {f"b{i}": n for i, n in enumerate(labels, start=1)}
    if expr is not None:
        for ours, theirs in zip(expr.split(";"), expression.split(";")):
            band_labels[ours.strip()] = theirs.strip()
    indexes = None
    if expr is None and len(names) == 3 and len(labels) == len(unique):
        indexes = [unique.index(n) + 1 for n in names]  # the bands in the order asked
    return {"path": paths if len(paths) > 1 else paths[0], "expression": expr, "band_labels": band_labels,
            "nodata": None, "scale": None, "offset": None, "protected": protected, "assets": names,
            "indexes": indexes}


def item_layer(items, assets=None, expression=None, server=None, name=None, unscale: bool = True,
               resolution: str = "highest", resampling: str | None = None, **style):
    """A :class:`~leafmap_tiles.map.layers.RasterTileLayer` of one STAC item (or of
    same-date items shown as one mosaic), not yet on a map.  ``assets``: asset names
    (``["red", "nir"]``; default the item's ``visual`` asset or its only data asset);
    ``expression``: band math over those names; ``unscale``: apply each asset's
    ``raster:scale``/``raster:offset`` when several assets are stacked;
    ``resolution``: ``"highest"`` or ``"lowest"`` of the assets' pixel sizes;
    ``resampling``: how coarser assets and tiles are resampled (default nearest);
    ``**style``: as for ``Map.add_raster`` (``colormap``, ``vmin``, ``vmax`` ...).
    Raises ``StyleError``/``TypeError`` for bad arguments and the errors of
    ``add_raster`` before anything is registered."""
    from leafmap_tiles.client import get_server
    from leafmap_tiles.map.layers import make_raster_layer

    if is_item(items) or isinstance(items, (str, os.PathLike)):
        items = [items]
    items = list(items)
    if not items:
        raise ProviderError("no STAC item given")
    server = server or get_server(start=True)
    src = item_sources(items, assets, server, expression=expression, unscale=unscale, resolution=resolution,
                       resampling=resampling or "nearest")
    nodata = style.pop("nodata", None)
    if nodata is None:
        nodata = src["nodata"]
    if src["expression"] is not None:
        style["expression"] = src["expression"]
    if src.get("indexes") and style.get("indexes") is None:
        style["indexes"] = src["indexes"]
    if resampling is not None:
        style["resampling"] = resampling
    first = as_item(items[0])
    try:
        layer = make_raster_layer(
            server, src["path"], name=name or f"{first.id} {'/'.join(src['assets'])}", nodata=nodata,
            scale=src["scale"], offset=src["offset"], protected=src["protected"], **style,
        )
    except Exception:
        _drop_files(server, src["path"])
        raise
    layer.band_labels = src["band_labels"]
    layer.metadata["stac"] = {"items": [as_item(i).id for i in items], "assets": src["assets"],
                              "expression": expression}
    return layer


def _drop_files(server, path) -> None:
    source = source_path(path)
    for p in source_members(source) if source is not None else ():
        if os.path.dirname(p) == server.tmpdir and p.endswith(".vrt"):
            try:
                os.remove(p)
            except OSError:
                pass


def time_layers(items: Iterable, assets=None, expression=None, colormap=None, vmin=None, vmax=None,
                server=None, **style) -> dict:
    """``{date: layer}``, one layer per date (``YYYY-MM-DD``), the items of a date as
    one mosaic, each built by :func:`item_layer`.  Dates whose items lack one of the
    assets are left out.  Layers made before an error are released."""
    from leafmap_tiles.providers.items import group_by_date

    layers = {}
    try:
        for date, group in group_by_date(items).items():
            names = asset_names(assets) if assets is not None else None
            usable = [i for i in group if names is None or all(a in i.assets for a in names)]
            if not usable:
                continue
            layers[date] = item_layer(usable, assets=assets, expression=expression, server=server, name=date,
                                      colormap=colormap, vmin=vmin, vmax=vmax, **style)
    except Exception:
        for layer in layers.values():
            layer.release()
        raise
    return layers

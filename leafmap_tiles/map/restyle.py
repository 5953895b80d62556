"""Restyling a raster layer after it was added (leafmap #750): the same layer object
gets a new tile URL; its colorbars are redrawn."""

from __future__ import annotations

from leafmap_tiles.errors import StyleError

STYLE_KEYS = ("colormap", "vmin", "vmax", "indexes", "expression", "stretch", "nodata", "resampling")


def restyle(layer, **changes) -> None:
    """Body of :meth:`RasterTileLayer.restyle`: registers the layer's source again with
    the new style (validated by the server; the old registration is released only
    afterwards), then points the layer at it."""
    from leafmap_tiles.map.style_params import colormap_param, index_list, number_list

    unknown = set(changes) - set(STYLE_KEYS)
    if unknown:
        raise TypeError(f"unexpected style argument(s): {', '.join(sorted(unknown))}")
    given = {k: v for k, v in changes.items() if v is not None}
    if not given:
        return
    server = layer.server
    body = server.registration(layer.source_id) or layer.registration
    if body is None:
        raise StyleError("this layer's source was released; add it to a map again")
    params = dict(body.get("style") or {})
    if "indexes" in given or "expression" in given:
        for k in ("vmin", "vmax"):
            if k not in given:
                params.pop(k, None)
        params.pop("indexes" if "expression" in given else "expression", None)
    colormap = layer.colormap
    for key, value in given.items():
        if key == "indexes":
            params["indexes"] = ",".join(str(i) for i in index_list(value))
        elif key in ("vmin", "vmax"):
            params[key] = number_list(value, key)
        elif key == "colormap":
            params["colormap"] = colormap_param(value, server)
            colormap = value
        elif key == "expression":
            labels = getattr(layer, "band_labels", None) or {}
            names = [labels[f"b{i}"] for i in range(1, len(labels) + 1) if f"b{i}" in labels]
            if names and any(n != f"b{i}" for i, n in enumerate(names, start=1)):
                from leafmap_tiles.client.stack import band_expression

                value = band_expression(value, names)  # asset names of a STAC layer
            params["expression"] = value
        elif key == "nodata":
            params["nodata"] = "nan" if value != value else value
        else:
            params[key] = value
    reg = server.register(body["path"], params, defaults=body.get("defaults"), protected=body.get("protected", False))
    old_id = layer.source_id
    layer.source_id = reg["id"]
    layer.style = dict(reg["style"])
    layer.info = reg["info"]
    layer.stretch = reg.get("stretch") or {}
    layer.statistics = reg.get("statistics") or []
    layer.palette = reg.get("palette", False)
    layer.colormap = colormap
    layer.registration = server.registration(reg["id"])
    if "expression" in given and layer.band_labels is not None:
        layer.band_labels = {k: v for k, v in layer.band_labels.items() if k.startswith("b") and k[1:].isdigit()}
        layer.band_labels[params["expression"]] = given["expression"]
    layer.url = server.tile_url(reg["id"], layer.style)
    if old_id != reg["id"]:
        server.release(old_id)
    for cb in list(getattr(layer, "colorbars", [])):
        _redraw(layer, cb)


def _redraw(layer, cb) -> None:
    """Draw ``cb`` again from the layer's new style, in its widget (same control)."""
    from leafmap_tiles.map.colorbar import Colorbar, style_of_layer

    args = dict(getattr(cb, "bound", {}) or {})
    derived = style_of_layer(layer) if not isinstance(args.get("colormap") or layer.colormap, dict) else \
        {"colormap": layer.colormap, "vmin": None, "vmax": None, "scale": None, "offset": None}
    for k in ("colormap", "vmin", "vmax", "scale", "offset"):
        if args.get(k) is None:
            args[k] = derived[k]
    new = Colorbar(**args)
    cb.__dict__.update({k: v for k, v in new.__dict__.items() if k not in ("widget", "control", "bound")})
    cb.widget.value = new.png
    cb.widget.width, cb.widget.height = new.size_px
    new.widget.close()

"""Datasets of a Terracotta key store on the map: :meth:`Map.add_dataset` and
:meth:`Map.dataset_layers` (the layers a time slider steps through).

A dataset is band 1 of the raster the store lists for its key values (as in
Terracotta).  Its file is registered with the session tile server like any
:meth:`Map.add_raster` source, so the layers are ordinary
:class:`~leafmap_tiles.map.layers.RasterTileLayer` s.  The default stretch comes from
the store's metadata: the dataset's ``range`` (minimum, maximum), and for a set of
layers one common range (minimum and maximum over them) so that frames compare.
``vmin``/``vmax`` may also be percentiles of the store's metadata, ``"p2"``/``"p98"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from leafmap_tiles.errors import DatasetNotFoundError, InvalidKeyError, StoreError, StyleError

#: keyword arguments that style a dataset layer (everything else names a key)
STYLE_ARGS = ("colormap", "vmin", "vmax", "layer_name", "visible", "opacity", "attribution", "resampling", "tile_size")


def split_kwargs(store, kwargs: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    """``(key_values, style)`` from keyword arguments; unknown names are errors."""
    names = tuple(store.key_names)
    keys, style = {}, {}
    for k, v in kwargs.items():
        if k in names:
            keys[k] = str(v)
        elif k in STYLE_ARGS:
            style[k] = v
        else:
            raise TypeError(
                f"unexpected argument {k!r}: not a key of this store (keys: {', '.join(names)}) "
                f"nor a style argument ({', '.join(STYLE_ARGS)})"
            )
    return keys, style


def _as_mapping(store, keys) -> dict[str, str]:
    names = tuple(store.key_names)
    if keys is None:
        return {}
    if isinstance(keys, Mapping):
        unknown = set(keys) - set(names)
        if unknown:
            raise InvalidKeyError(f"unknown key(s) {sorted(unknown)} (keys: {', '.join(names)})")
        return {k: str(v) for k, v in keys.items()}
    if isinstance(keys, str) or not isinstance(keys, Sequence):
        raise InvalidKeyError(f"keys must be a sequence of key values in key order or a mapping, got {keys!r}")
    if len(keys) > len(names):
        raise InvalidKeyError(f"got {len(keys)} key values for {len(names)} keys ({', '.join(names)})")
    return {n: str(v) for n, v in zip(names, keys)}


def find(store, keys=None, **key_values) -> tuple[tuple[str, ...], str]:
    """The one dataset matching ``keys`` and ``key_values``: ``(key values, path)``.

    Raises:
        DatasetNotFoundError: no dataset matches.
        StoreError: several match (the message names the keys still free).
    """
    where = _as_mapping(store, keys)
    for k, v in key_values.items():
        if k in where and where[k] != v:
            raise InvalidKeyError(f"key {k!r} given twice with different values ({where[k]!r}, {v!r})")
        where[k] = v
    found = store.get_datasets(where)
    if not found:
        raise DatasetNotFoundError(f"No dataset found with keys {where}")
    if len(found) > 1:
        free = [n for n in store.key_names if n not in where]
        raise StoreError(
            f"{len(found)} datasets match {where}; give a value for {', '.join(free)} "
            "(or use Map.dataset_layers for a set of layers)"
        )
    ((kv, path),) = found.items()
    return tuple(kv), path


def matplotlib_name(colormap):
    """Terracotta writes colormap names in lower case (``rdylgn``); matplotlib's are
    case-sensitive (``RdYlGn``).  Map the one to the other, leaving others as they are."""
    if not isinstance(colormap, str):
        return colormap
    import matplotlib

    if colormap in matplotlib.colormaps:
        return colormap
    lower = {n.lower(): n for n in sorted(matplotlib.colormaps)}
    return lower.get(colormap.lower(), colormap)


def _limit(value, metadata: Mapping[str, Any], which: int):
    """A stretch limit: a number, ``"pN"`` (percentile from the metadata), or None
    (the metadata range's end)."""
    rng = metadata["range"]
    if value is None:
        return float(rng[which])
    if isinstance(value, str) and value[:1] == "p":
        try:
            n = int(value[1:])
        except ValueError:
            raise StyleError(f"percentile must be 'p0'..'p100', got {value!r}") from None
        if not 0 <= n <= 100:
            raise StyleError(f"percentile must be 'p0'..'p100', got {value!r}")
        if n in (0, 100):
            return float(rng[0 if n == 0 else 1])
        return float(metadata["percentiles"][n - 1])
    return float(value)


def _stretch(style: dict, metadatas: list[Mapping[str, Any]]) -> tuple[float, float] | None:
    colormap = style.get("colormap")
    if isinstance(colormap, Mapping):  # categorical: no stretch
        return None
    los = [_limit(style.get("vmin"), md, 0) for md in metadatas]
    his = [_limit(style.get("vmax"), md, 1) for md in metadatas]
    lo, hi = min(los), max(his)
    if hi <= lo:  # constant data: any non-empty range shows it
        hi = lo + 1.0
    return lo, hi


def create_layer(m, store, kv: tuple[str, ...], path: str, style: dict, stretch, metadata=None) -> Any:
    if getattr(store, "provider", None) == "http":  # a remote Terracotta server renders it
        from leafmap_tiles.map.remote_layers import remote_dataset_layer

        return remote_dataset_layer(store, kv, style, stretch, metadata or store.get_metadata(list(kv)))
    names = tuple(store.key_names)
    name = style.get("layer_name") or "/".join(kv)
    kwargs = dict(
        indexes=1,
        colormap=matplotlib_name(style.get("colormap")),
        layer_name=name,
        visible=style.get("visible", True),
        opacity=style.get("opacity", 1.0),
        attribution=style.get("attribution"),
    )
    if stretch is not None:
        kwargs["vmin"], kwargs["vmax"] = stretch
    for extra in ("resampling", "tile_size"):
        if style.get(extra) is not None:
            kwargs[extra] = style[extra]
    layer = m.create_raster_layer(path, **kwargs)
    layer.metadata["dataset"] = dict(zip(names, kv))
    return layer


def _as_store(store):
    """A key store, or a path/URL of one (opened; it must exist); an http(s) URL is a
    Terracotta-compatible server (:func:`leafmap_tiles.store.connect`)."""
    import os

    if isinstance(store, (str, os.PathLike)):
        from leafmap_tiles import _paths
        from leafmap_tiles import store as _store
        from leafmap_tiles.errors import SourceNotFoundError

        text = os.fspath(store)
        if _paths.is_http_url(text):  # a running Terracotta-compatible server (any case of the scheme)
            return _store.connect(text)
        # a local file (a path or a file:// URL) must be there; a database URL is opened
        if not _paths.is_remote_path(text) and not os.path.exists(_paths.from_file_url(text)):
            raise SourceNotFoundError(f"key store database not found: {text}")
        return _store.open(text)
    if not hasattr(store, "key_names"):
        raise TypeError(f"store must be a key store (leafmap_tiles.store.open(...)) or its path, got {type(store).__name__}")
    return store


def add_dataset(m, store, keys=None, zoom_to_layer: bool = True, **kwargs):
    """Body of :meth:`Map.add_dataset`."""
    store = _as_store(store)
    key_values, style = split_kwargs(store, kwargs)
    kv, path = find(store, keys, **key_values)
    metadata = store.get_metadata(list(kv))
    layer = create_layer(m, store, kv, path, style, _stretch(style, [metadata]), metadata)
    layer.class_names = categories(metadata)
    return m.put_on_map(layer, zoom_to_layer)


def categories(metadata: Mapping[str, Any]) -> dict | None:
    """``{value: class name}`` from a dataset's Terracotta ``categories`` metadata
    (``{"metadata": {"categories": {name: value}}}``, as in Terracotta's
    categorical-data guide), else None."""
    extra = (metadata or {}).get("metadata") or {}
    cats = extra.get("categories") if isinstance(extra, Mapping) else None
    if not isinstance(cats, Mapping) or not cats:
        return None
    out = {}
    for name, value in cats.items():
        try:
            v = float(value)
        except (TypeError, ValueError):
            continue
        out[int(v) if v.is_integer() else v] = str(name)
    return out or None


def dataset_layers(m, store, **kwargs) -> dict[str, Any]:
    """Body of :meth:`Map.dataset_layers`."""
    store = _as_store(store)
    key_values, style = split_kwargs(store, kwargs)
    names = tuple(store.key_names)
    free = [n for n in names if n not in key_values]
    if len(free) != 1:
        raise StoreError(
            f"give values for all keys but one (the one the layers differ in); free keys now: "
            f"{', '.join(free) if free else 'none'}"
        )
    found = store.get_datasets(key_values, order_by=free)
    if not found:
        raise DatasetNotFoundError(f"No dataset found with keys {key_values}")
    idx = names.index(free[0])
    metadatas = [store.get_metadata(list(kv)) for kv in found]
    stretch = _stretch(style, metadatas)
    layers: dict[str, Any] = {}
    try:
        for kv, path in found.items():
            st = dict(style)
            if st.get("layer_name"):
                st["layer_name"] = f"{st['layer_name']} {kv[idx]}"
            layers[kv[idx]] = create_layer(m, store, tuple(kv), path, st, stretch, metadatas[list(found).index(kv)])
            layers[kv[idx]].class_names = categories(metadatas[list(found).index(kv)])
    except Exception:
        for layer in layers.values():
            layer.release()
        raise
    return layers


_matplotlib_name = matplotlib_name  # the name before issue 17 (branches written before it)

"""Map.add_dataset and Map.dataset_layers on a key store: layers served by the
session tile server, styled from the store's metadata."""

from __future__ import annotations

import numpy as np
import pytest
import requests

from leafmap_tiles.errors import DatasetNotFoundError, InvalidKeyError, StoreError

from .conftest import rgba


@pytest.fixture(scope="module")
def ks(tc_db):
    from leafmap_tiles import store

    return store.open(tc_db)


def fetch(layer, z, x, y) -> np.ndarray:
    url = layer.url.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))
    r = requests.get(url, timeout=120)
    assert r.status_code == 200, r.text
    return rgba(r.content)


def test_add_dataset_styles_from_metadata(m, ks, client):
    from leafmap_tiles.map.layers import RasterTileLayer
    from leafmap_tiles.render.terracotta import _tile_index

    layer = m.add_dataset(ks, group="dem", item="rmnp", band="b1", colormap="viridis")
    assert isinstance(layer, RasterTileLayer) and layer in m.layers
    md = ks.get_metadata(["dem", "rmnp", "b1"])
    assert layer.stretch["vmin"] == [pytest.approx(md["range"][0])]
    assert layer.stretch["vmax"] == [pytest.approx(md["range"][1])]
    assert layer.name == "dem/rmnp/b1"
    assert layer.metadata["dataset"] == {"group": "dem", "item": "rmnp", "band": "b1"}
    # the session tile shows the same picture as /singleband with the same stretch
    lat, lon = m.center
    z = 12
    x, y = _tile_index(lon, lat, z)
    ours = fetch(layer, z, x, y)
    tc_url = f"/singleband/dem/rmnp/b1/{z}/{x}/{y}.png?colormap=viridis"
    theirs = rgba(client.get(tc_url).content)
    both = (ours[..., 3] > 0) & (theirs[..., 3] > 0)
    assert both.sum() > 10_000
    assert np.abs(ours[..., :3].astype(int) - theirs[..., :3].astype(int))[both].mean() <= 3


def test_add_dataset_keys_sequence_percentiles_and_terracotta_cmap_name(m, ks):
    layer = m.add_dataset(ks, ["dem", "colorado", "b1"], colormap="rdylgn", vmin="p2", vmax="p98", zoom_to_layer=False)
    md = ks.get_metadata(["dem", "colorado", "b1"])
    assert layer.stretch["vmin"] == [pytest.approx(md["percentiles"][1])]
    assert layer.stretch["vmax"] == [pytest.approx(md["percentiles"][97])]
    assert layer.colormap == "RdYlGn"


def test_add_dataset_explicit_colours(m, ks):
    from leafmap_tiles.render.terracotta import _tile_index

    colours = {4: "#00ff00", 5: "#0000ff"}
    layer = m.add_dataset(ks, group="landcover", item="nlcd", band="b1", colormap=colours)
    lat, lon = m.center
    x, y = _tile_index(lon, lat, int(m.zoom))
    img = fetch(layer, int(m.zoom), x, y)
    seen = {tuple(px) for px in np.unique(img[img[..., 3] > 0].reshape(-1, 4), axis=0)}
    assert seen and seen <= {(0, 255, 0, 255), (0, 0, 255, 255)}


def test_add_dataset_errors(m, ks):
    with pytest.raises(DatasetNotFoundError):
        m.add_dataset(ks, group="dem", item="nothere", band="b1")
    with pytest.raises(StoreError, match="band"):
        m.add_dataset(ks, group="landsat", item="1985")
    with pytest.raises(TypeError, match="not a key"):
        m.add_dataset(ks, group="dem", item="rmnp", band="b1", colour="red")
    with pytest.raises(InvalidKeyError):
        m.add_dataset(ks, ["a", "b", "c", "d"])
    assert not [layer for layer in m.layers if getattr(layer, "source_id", None)]


def test_dataset_layers_feed_a_time_slider(m, ks):
    layers = m.dataset_layers(ks, group="landsat", band="b4", colormap="greens")
    assert list(layers) == ["1985", "1990"]
    ranges = [ks.get_metadata(["landsat", y, "b4"])["range"] for y in layers]
    for layer in layers.values():
        assert layer not in m.layers
        assert layer.stretch["vmin"] == [pytest.approx(min(r[0] for r in ranges))]
        assert layer.stretch["vmax"] == [pytest.approx(max(r[1] for r in ranges))]
    # frames differ (two years), and each has data
    from leafmap_tiles.render.terracotta import _tile_index

    b = layers["1985"].info["bounds"]
    x, y = _tile_index((b[0] + b[2]) / 2, (b[1] + b[3]) / 2, 11)
    a, c = fetch(layers["1985"], 11, x, y), fetch(layers["1990"], 11, x, y)
    assert (a[..., 3] > 0).mean() > 0.3 and not np.array_equal(a, c)
    if hasattr(m, "add_time_slider"):
        slider = m.add_time_slider(layers)
        assert slider is not None
    with pytest.raises(StoreError, match="free keys"):
        m.dataset_layers(ks, group="landsat")
    for layer in layers.values():
        layer.release()

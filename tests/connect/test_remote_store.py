"""``store.connect(url)``: a running Terracotta-compatible server (ours, and
Terracotta itself) as a read-only key store that the map accepts."""

from __future__ import annotations

import morecantile
import numpy as np
import pytest
import requests

from leafmap_tiles import store
from leafmap_tiles.errors import DatasetNotFoundError, ReadOnlyStoreError, SourceUnreachableError
from tests.connect.conftest import CATEGORIES, DATA
from tests.core.helpers import decode

TMS = morecantile.tms.get("WebMercatorQuad")


def get_tile(url, **kwargs):
    """GET a tile, honouring a 503's Retry-After (a render past the server's deadline
    on a loaded machine) a few times, as an HTTP client should."""
    import time

    for _ in range(6):
        r = requests.get(url, timeout=60, **kwargs)
        if r.status_code != 503:
            return r
        time.sleep(float(r.headers.get("Retry-After") or 1))
    return r


def test_keys_datasets_metadata_as_the_local_database(server_url, tc_db):
    remote, local = store.connect(server_url), store.open(tc_db)
    assert remote.get_keys() == local.get_keys()
    assert list(remote.get_datasets()) == list(local.get_datasets())
    assert list(remote.get_datasets({"kind": "landsat"})) == [("landsat", "1990", b) for b in ("b1", "b2", "b3", "b4")]
    assert list(remote.get_datasets({"band": ["b2", "class"]})) == [("landcover", "nlcd", "class"),
                                                                    ("landsat", "1990", "b2")]
    assert list(remote.get_datasets(limit=2, page=1)) == list(local.get_datasets(limit=2, page=1))
    md, ref = remote.get_metadata(["dem", "rmnp", "elevation"]), local.get_metadata(["dem", "rmnp", "elevation"])
    assert md["range"] == pytest.approx(ref["range"])
    assert md["bounds"] == pytest.approx(ref["bounds"])
    assert md["percentiles"] == pytest.approx(ref["percentiles"], rel=1e-6)
    assert remote.get_metadata(["landcover", "nlcd", "class"])["metadata"] == {"categories": CATEGORIES}
    with pytest.raises(DatasetNotFoundError):
        remote.get_metadata(["dem", "nowhere", "elevation"])
    with pytest.raises(ReadOnlyStoreError):
        remote.insert(["a", "b", "c"], str(DATA / "cog.tif"))
    with pytest.raises(ReadOnlyStoreError):
        remote.create(["x"])


def test_add_dataset_and_dataset_layers_show_the_servers_tiles(server_url, m):
    remote = store.connect(server_url)
    layer = m.add_dataset(remote, kind="dem", name="rmnp", band="elevation", colormap="terrain", vmin="p2",
                          vmax="p98")
    md = remote.get_metadata(["dem", "rmnp", "elevation"])
    assert layer in m.layers
    assert layer.stretch == {"vmin": [md["percentiles"][1]], "vmax": [md["percentiles"][97]]}
    assert layer.url.startswith(server_url + "/singleband/dem/rmnp/elevation/{z}/{x}/{y}.png?")
    w, s, e, n = md["bounds"]
    t = TMS.tile((w + e) / 2, (s + n) / 2, 11)
    url = layer.url.replace("{z}", str(t.z)).replace("{x}", str(t.x)).replace("{y}", str(t.y))
    r = get_tile(url)
    assert r.status_code == 200
    # the same request the server answers to a hand-written Terracotta URL
    lo, hi = md["percentiles"][1], md["percentiles"][97]
    ref = get_tile(f"{server_url}/singleband/dem/rmnp/elevation/{t.z}/{t.x}/{t.y}.png",
                   params={"colormap": "terrain", "stretch_range": f"[{lo},{hi}]"})
    assert ref.status_code == 200
    assert np.array_equal(decode(r.content), decode(ref.content))
    assert (decode(r.content)[..., 3] > 0).sum() > 1000

    cats = m.add_dataset(remote, kind="landcover", name="nlcd", band="class",
                         colormap={1: "#466b9f", 4: "#68ab5f", 7: "#ab6c28"})
    assert cats.class_names == {v: k for k, v in CATEGORIES.items()}
    assert "colormap=explicit" in cats.url

    frames = m.dataset_layers(remote, kind="landsat", name="1990", colormap="greys")
    assert list(frames) == ["b1", "b2", "b3", "b4"]
    lo = min(remote.get_metadata(["landsat", "1990", b])["range"][0] for b in frames)
    assert all(f.stretch["vmin"] == [lo] for f in frames.values())
    slider = m.add_time_slider(frames)
    assert slider is not None
    # the server's URL itself is accepted too
    again = m.add_dataset(server_url, kind="dem", name="rmnp", band="elevation", colormap="terrain",
                          vmin="p2", vmax="p98", zoom_to_layer=False)
    assert again.url == layer.url
    with pytest.raises(Exception, match="store.connect"):
        store.open(server_url)


def test_connect_to_nothing_is_unreachable():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SourceUnreachableError):
        store.connect(f"http://127.0.0.1:{port}").get_keys()


def test_connect_command_refuses_what_is_not_a_terracotta_server(tmp_path):
    import socket
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).with_name("leafmap-tiles")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = subprocess.run([str(exe), "connect", f"127.0.0.1:{port}", "--no-browser"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1
    assert r.stderr.startswith("leafmap-tiles connect: error: cannot reach the Terracotta server")
    r = subprocess.run([str(exe), "connect", "ftp://x", "--no-browser"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "expected http(s)://host:port" in r.stderr


def test_connect_without_scheme_is_http(server_url):
    """``store.connect("localhost:PORT")``, as ``terracotta connect localhost:PORT``."""
    port = server_url.rsplit(":", 1)[1]
    for spelling in (f"localhost:{port}", f"127.0.0.1:{port}/", f" 127.0.0.1:{port} "):
        remote = store.connect(spelling)
        assert remote.url in (f"http://localhost:{port}", f"http://127.0.0.1:{port}")
        assert list(remote.get_datasets()) == list(store.connect(server_url).get_datasets())
    from leafmap_tiles.errors import StoreError

    for bad in ("ftp://127.0.0.1:1", "http://", "127.0.0.1:notaport"):
        with pytest.raises(StoreError, match="host:port"):
            store.connect(bad)


def test_unknown_colormap_on_a_remote_store_is_the_local_error(server_url, tc_db, m):
    from leafmap_tiles.errors import StyleError

    remote, local = store.connect(server_url), store.open(tc_db)
    before = list(m.layers)
    with pytest.raises(StyleError) as local_err:
        m.add_dataset(local, kind="dem", name="rmnp", band="elevation", colormap="virdis")
    assert list(m.layers) == before
    with pytest.raises(StyleError) as remote_err:
        m.add_dataset(remote, kind="dem", name="rmnp", band="elevation", colormap="virdis")
    assert str(remote_err.value) == str(local_err.value)
    assert "unknown colormap 'virdis'" in str(remote_err.value) and "'viridis'" in str(remote_err.value)
    with pytest.raises(StyleError, match="unknown colormap"):
        m.dataset_layers(remote, kind="landsat", name="1990", colormap="nope")
    assert list(m.layers) == before
    # both spellings the server knows are accepted: matplotlib's and Terracotta's lower case
    for name in ("RdYlGn", "rdylgn"):
        layer = m.add_dataset(remote, kind="dem", name="rmnp", band="elevation", colormap=name,
                              zoom_to_layer=False)
        assert "colormap=rdylgn" in layer.url

"""``leafmap-tiles serve --resampling/--reprojection`` (Terracotta's RESAMPLING_METHOD
and REPROJECTION_METHOD): the tile is the one rio-tiler reads with those methods,
stretched as Terracotta stretches (values to 1..255, 0 transparent)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import morecantile
import numpy as np
import pytest
import requests

from leafmap_tiles import store
from tests.conftest import data
from tests.core.helpers import decode

TMS = morecantile.tms.get("WebMercatorQuad")


def _serve(db, *args, env=None):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = os.path.join(os.path.dirname(sys.executable), "leafmap-tiles")
    proc = subprocess.Popen([exe, "serve", "-d", str(db), "--port", str(port), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    return proc, f"http://127.0.0.1:{port}", line


def _tile(url):
    for _ in range(6):
        r = requests.get(url, timeout=60)
        if r.status_code != 503:
            break
        time.sleep(1)
    assert r.status_code == 200, r.text
    return r.content


@pytest.mark.parametrize("how", ["cli", "env"])
def test_nearest_tiles_are_rio_tilers_nearest_read(tmp_path, how):
    from rio_tiler.io import Reader

    db = tmp_path / "tc.sqlite"
    ks = store.open(str(db))
    ks.create(["name"])
    ks.insert(["dem"], data("rmnp-dem.tif"))
    ks.dispose()
    if how == "cli":
        proc, base, line = _serve(db, "--resampling", "nearest", "--reprojection", "nearest")
    else:
        proc, base, line = _serve(db, env=dict(os.environ, LEAFMAP_TILES_RESAMPLING="nearest",
                                               LEAFMAP_TILES_REPROJECTION="nearest"))
    default, dbase, _ = _serve(db)
    try:
        assert "Serving" in line, proc.stderr.read()
        lo, hi = 2500.0, 3800.0
        n_checked = 0
        with Reader(data("rmnp-dem.tif")) as r:
            for z in (10, 11, 12, 13):  # overview reads and native-resolution reads
                t = TMS.tile(-105.7, 40.35, z)
                got = decode(_tile(f"{base}/singleband/dem/{t.z}/{t.x}/{t.y}.png?stretch_range=[{lo},{hi}]"))
                img = r.tile(t.x, t.y, t.z, indexes=1, resampling_method="nearest", reproject_method="nearest")
                valid = img.mask > 0
                v = np.clip((img.data[0].astype("float64") - lo) / (hi - lo), 0, 1) * 254 + 1
                want = np.where(valid, np.rint(v), 0).astype(np.uint8)
                assert np.array_equal(got[..., 3] > 0, valid)
                assert np.array_equal(got[..., 0][valid], want[valid])  # grey: r = g = b = index
                n_checked += int(valid.sum())
                avg = decode(_tile(f"{dbase}/singleband/dem/{t.z}/{t.x}/{t.y}.png?stretch_range=[{lo},{hi}]"))
                if z <= 11:  # Terracotta's defaults (average, bilinear warp) give other pixels
                    assert not np.array_equal(avg, got)
        assert n_checked > 100_000
    finally:
        for p in (proc, default):
            p.terminate()
            p.wait(20)


def test_bad_method_is_refused_at_start(tmp_path):
    db = tmp_path / "tc.sqlite"
    ks = store.open(str(db))
    ks.create(["name"])
    ks.dispose()
    proc, _, _ = _serve(db, env=dict(os.environ, LEAFMAP_TILES_RESAMPLING="lanczos"))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "resampling must be one of" in err


def test_nearest_far_tiles_read_the_overview_as_rio_tiler(tmp_path):
    """Zoomed out, a nearest tile of a raster with nodata and overviews (cog_int16.tif:
    nodata -32768, overviews 2-8) is rio-tiler's nearest read (``part`` with Terracotta's
    2 pixels of padding), which takes the overview of the tile's resolution (the warped VRT with an added alpha band that the other methods
    use made GDAL read the full resolution of benchmarks/tiles.py's 10980 px s2 file: 266 vs
    14 ms of CPU per z9-z10 tile; a timing, so not asserted here)."""
    from rio_tiler.io import Reader

    db = tmp_path / "tc.sqlite"
    ks = store.open(str(db))
    ks.create(["name"])
    ks.insert(["int16"], data("cog_int16.tif"))
    ks.dispose()
    proc, base, line = _serve(db, "--resampling", "nearest", "--reprojection", "nearest")
    try:
        assert "Serving" in line, proc.stderr.read()
        with Reader(data("cog_int16.tif")) as r:
            w, s, e, n = r.get_geographic_bounds("EPSG:4326")
            lo, hi = r.statistics()["b1"].percentile_2, r.statistics()["b1"].percentile_98
            for z in (7, 8):  # 1/4, 1/2 of the native resolution (z ~9; farther: decimated reads)
                t = TMS.tile((w + e) / 2, (s + n) / 2, z)
                got = decode(_tile(f"{base}/singleband/int16/{t.z}/{t.x}/{t.y}.png?stretch_range=[{lo},{hi}]"))
                bounds = tuple(TMS.xy_bounds(t.x, t.y, t.z))
                kw = dict(dst_crs="EPSG:3857", bounds_crs="EPSG:3857", height=256, width=256, indexes=1,
                          resampling_method="nearest", reproject_method="nearest", padding=2)
                img = r.part(bounds, **kw)  # Terracotta's read: 2 pixels of padding
                valid = img.mask > 0
                v = np.clip((img.data[0].astype("float64") - lo) / (hi - lo), 0, 1) * 254 + 1
                want = np.where(valid, np.rint(v), 0).astype(np.uint8)
                assert valid.sum() > 1000
                assert np.array_equal(got[..., 3] > 0, valid), z
                assert np.array_equal(got[..., 0][valid], want[valid]), z
    finally:
        proc.terminate()
        proc.wait(20)

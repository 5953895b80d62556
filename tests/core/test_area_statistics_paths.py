"""The fast paths of the area statistics (issue 16, the 40-frame series benchmark): only the
statistics asked are computed, one dataset per source shared by the server's threads, the
expression evaluated in chunks, integer bands read without a second mask read, frames sent
on kept http.client connections.  Each path must give what the plain path gives (and
rasterio + numpy give)."""

from __future__ import annotations

import http.server
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import rasterio
import shapely.geometry as sg
from rasterio.transform import from_origin
from rasterio.windows import Window

from leafmap_tiles.client.loopback import LoopbackPool
from leafmap_tiles.errors import BadRequestError
from leafmap_tiles.render import zonal
from leafmap_tiles.render.engine import RenderEngine
from leafmap_tiles.render.style import evaluate_blocks, evaluate_values, parse_style
from tests.core.test_area_statistics import FIELD, assert_same, lonlat_polygon, reference
from tests.map.helpers import NDVI, naip_files

NAIP = naip_files()


def test_only_the_stats_asked_are_computed_and_all_by_default(m):
    lyr = m.add_raster(NAIP[0], expression=NDVI)
    poly = lonlat_polygon(NAIP[0], FIELD)
    ref, _ = reference(NAIP[0], poly, NDVI, percentiles=(10, 90))
    srv, geom = m.server, sg.mapping(poly)
    some = srv.statistics(lyr.source_id, geom, lyr.style, [10, 90], stats=["median", "mean"])["statistics"][0]
    assert list(some) == ["count", "mean", "median", "p10", "p90"]  # count and percentiles always
    assert_same(some, {k: ref[k] for k in some})
    every = srv.statistics(lyr.source_id, geom, lyr.style, [10, 90])["statistics"][0]
    assert list(every) == ["count", "mean", "median", "min", "max", "std", "p10", "p90"]
    assert_same(every, ref)
    assert srv.statistics(lyr.source_id, geom, lyr.style, [], stats=[])["statistics"][0] == {"count": ref["count"]}
    for bad in (["average"], "average", [3], 3):
        with pytest.raises(BadRequestError):
            srv.statistics(lyr.source_id, geom, lyr.style, [], stats=bad)
    # one name alone, as slider.series takes it
    assert srv.statistics(lyr.source_id, geom, lyr.style, [], stats="mean")["statistics"][0] == {
        "count": ref["count"], "mean": some["mean"]}
    # the layer's own method still answers every statistic
    assert set(lyr.statistics(poly, percentiles=(10, 90))) >= {"count", "mean", "median", "min", "max", "std", "p10"}


def test_reduce_of_a_subset_equals_numpy_and_leaves_order_dependent_stats_first():
    rng = np.random.default_rng(16)
    vals = rng.normal(size=10001)
    ref = {"count": vals.size, "mean": vals.mean(), "median": np.median(vals), "min": vals.min(),
           "max": vals.max(), "std": vals.std(), "p2.5": np.percentile(vals, 2.5)}
    got = zonal.reduce(vals.copy(), [2.5])
    assert got == {k: float(v) if k != "count" else v for k, v in ref.items()}  # bit for bit
    got = zonal.reduce(vals.copy(), [], ("std", "mean"))
    assert got == {"count": vals.size, "mean": float(ref["mean"]), "std": float(ref["std"])}
    assert zonal.reduce(np.zeros(0), [50], ("median",)) == {"count": 0, "median": None, "p50": None}


@pytest.mark.parametrize("n", [0, 1, 5, 8191, 8192, 8193, 20000])
def test_evaluate_values_equals_evaluate_blocks_bit_for_bit(n):
    rng = np.random.default_rng(n)
    b1 = rng.integers(0, 4, n).astype("uint8")  # zeros: 0/0 is NaN, x/0 inf
    b4 = rng.integers(0, 4, n).astype("uint8")
    for expr in (NDVI, "b1*0.5;b4/b1;2", "(b4>b1)"):
        from rio_tiler.expression import get_expression_blocks

        blocks = get_expression_blocks(expr)
        want = evaluate_blocks(blocks, ["b1", "b4"], np.stack([b1, b4])) if n else np.zeros((len(blocks), 0))
        for chunk in (3, 8192):
            got = evaluate_values(blocks, ["b1", "b4"], [b1, b4], chunk=chunk)
            assert len(got) == len(want)
            for g, w in zip(got, want):
                assert g.dtype == np.float64
                np.testing.assert_array_equal(g, w)


def _write(path, dtype, nodata=None, alpha=False, dataset_mask=False):
    data = np.arange(4 * 40 * 50, dtype="float64").reshape(4, 40, 50) % 7
    profile = {"driver": "GTiff", "width": 50, "height": 40, "count": 4, "dtype": dtype,
               "crs": "EPSG:32614", "transform": from_origin(500000, 5200000, 5, 5)}
    if nodata is not None:
        profile["nodata"] = nodata
    if alpha:
        profile["photometric"] = "RGB"
    with rasterio.open(path, "w", **{k: v for k, v in profile.items() if v is not None}) as ds:
        ds.write(data.astype(dtype))
        if alpha:
            ds.colorinterp = [rasterio.enums.ColorInterp.red, rasterio.enums.ColorInterp.green,
                              rasterio.enums.ColorInterp.blue, rasterio.enums.ColorInterp.alpha]
        if dataset_mask:
            m = np.full((40, 50), 255, dtype="uint8")
            m[:10] = 0
            ds.write_mask(m)
    return str(path)


def test_integer_bands_with_only_a_nodata_mask_read_as_gdal_masks_them(tmp_path):
    win = Window(3, 2, 30, 20)
    cases = {"uint8 nodata 0": ("uint8", 0, False, False, True), "int16 nodata 3": ("int16", 3, False, False, True),
             "int16 nodata 3.5 (not an integer)": ("int16", 3.5, False, False, False),
             "float32 nodata 0": ("float32", 0, False, False, False), "no nodata": ("uint8", None, False, False, False),
             "alpha band": ("uint8", None, True, False, False), "per-dataset mask": ("uint8", None, False, True, False)}
    for name, (dtype, nodata, alpha, dmask, fast) in cases.items():
        path = _write(tmp_path / f"{len(os.listdir(tmp_path))}.tif", dtype, nodata, alpha, dmask)
        with rasterio.open(path) as ds:
            assert (zonal._nodata_only(ds, (1, 4)) is not None) == fast, name
            data, valid = zonal._masked_read(ds, (1, 4), win, None, as_float=False)
            ref = ds.read([1, 4], window=win, masked=True)
        np.testing.assert_array_equal(np.asarray(data), ref.data, err_msg=name)
        np.testing.assert_array_equal(np.asarray(valid), ~np.ma.getmaskarray(ref), err_msg=name)
        if fast:
            assert not np.asarray(valid).all(), name  # the nodata pixels are found


def test_threads_share_one_dataset_per_source_with_the_same_values():
    eng = RenderEngine(cache_entries=256)
    poly = sg.mapping(lonlat_polygon(NAIP[0], FIELD))
    geom = zonal.check_geometry(poly)
    styles = {f: parse_style({"expression": NDVI}, eng.info(f)) for f in NAIP}
    one = {f: zonal.area_statistics(eng, f, styles[f], geom, [10], stats=("mean", "median")) for f in NAIP}
    jobs = NAIP * 8
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda f: zonal.area_statistics(eng, f, styles[f], geom, [10], stats=("mean", "median")),
                            jobs))
    for f, r in zip(jobs, got):
        assert r == one[f]
    ref, _ = reference(NAIP[3], lonlat_polygon(NAIP[0], FIELD), NDVI, percentiles=(10,))
    assert_same(one[NAIP[3]]["statistics"][0], {k: ref[k] for k in ("count", "mean", "median", "p10")})
    assert sorted(k[0] for k in eng._shared) == sorted(NAIP)  # one dataset per file, whatever the thread
    held = [e.reader for e in eng._shared.values()]
    eng.invalidate_all()  # credentials or GDAL options changed: reopened on next use
    assert not eng._shared and all(r.dataset.closed for r in held)
    assert zonal.area_statistics(eng, NAIP[0], styles[NAIP[0]], geom, [10], stats=("mean", "median")) == one[NAIP[0]]
    eng.forget(NAIP[0])
    assert not eng._shared


def test_shared_readers_are_bounded_and_evicted_ones_closed():
    eng = RenderEngine(cache_entries=2)
    opened = []
    for f in NAIP[:5]:
        with eng.shared_reader(f) as rdr:
            opened.append(rdr)
            assert not rdr.dataset.closed
    assert len(eng._shared) == 2
    assert all(r.dataset.closed for r in opened[:3]) and not any(r.dataset.closed for r in opened[3:])
    # a reader evicted while a thread holds it is closed when that thread lets it go
    with eng.shared_reader(NAIP[0]) as rdr:
        for f in NAIP[1:3]:
            with eng.shared_reader(f):
                pass
        assert not rdr.dataset.closed
        rdr.dataset.read(1, window=Window(0, 0, 4, 4))
    assert rdr.dataset.closed


class _ClosingHandler(http.server.BaseHTTPRequestHandler):
    """Answers keep-alive (HTTP/1.1, no ``Connection: close``) and then closes the
    connection anyway, as a server whose keep-alive timeout passed does."""

    protocol_version = "HTTP/1.1"
    served = 0

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        out = b'{"echo": ' + body + b"}"
        type(self).served += 1  # before the answer: the client may check it as soon as it reads
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
        self.close_connection = True

    def log_message(self, *a):
        pass


def test_loopback_pool_replaces_a_kept_connection_the_server_closed():
    _ClosingHandler.served = 0
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _ClosingHandler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    pool = LoopbackPool(httpd.server_address[1], timeout=10)
    try:
        for k in range(3):  # the 2nd and 3rd find their kept connection closed: sent again, once
            status, raw = pool.post_json("/x", {"k": k}, {})
            assert status == 200 and raw == b'{"echo": {"k": ' + str(k).encode() + b"}}"
        assert _ClosingHandler.served == 3
    finally:
        pool.close()
        httpd.shutdown()
        httpd.server_close()
        t.join(timeout=10)


def test_statistics_after_the_server_was_killed_restart_it(m):
    lyr = m.add_raster(NAIP[0], expression=NDVI)
    geom = sg.mapping(lonlat_polygon(NAIP[0], FIELD))
    before = m.server.statistics(lyr.source_id, geom, lyr.style, [], stats=["mean"])
    os.kill(m.server.pid, signal.SIGKILL)
    after = m.server.statistics(lyr.source_id, geom, lyr.style, [], stats=["mean"])
    assert after == before and m.server.alive()

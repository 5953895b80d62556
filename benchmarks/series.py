"""Area and point time series: ours against a plain rasterio loop, in the same run.

Inputs: the real NAIP quarter-quads of ``../shared/data/naip`` (10 dates 2009-2020, 934x724,
4 bands uint8, DEFLATE, 512 px blocks).  The 40-date series are those 10 files each copied
under 4 dates (distinct files of the same bytes, in ``LEAFMAP_TILES_BENCH_CACHE``): no other
40-date series of one place is in the shared data.  The polygon is a field of about 300x260
pixels (~78,000 pixels of 5 m, ~2 km^2); the points are 100 pixel centres spread over it
(seeded).  Every measured call is checked first: both sides give the same numbers.

- **polygon**, ours: ``slider.series(field, stats=("mean", "median"))`` on a time slider of the
  NDVI expression (one request per frame to the tile server, which reads the frames
  concurrently with its datasets kept open and GDAL's block cache warm).  Peer: for each
  file ``rasterio.open``, ``rasterio.mask.mask(ds, [field], crop=True, indexes=[1, 4],
  filled=False)``, NDVI in float64, ``mean`` and ``median`` of the valid pixels.
- **points**, ours: ``Collection.sample_points(points, band=4)`` on a collection of the same
  files (``collections.from_items``; one thread per date, 8 at once, the pixel of each point
  found from the cached header).  Peer: for each file ``rasterio.open`` and
  ``ds.sample(xy, indexes=4, masked=True)``.

Both sides run in the same process after one warm-up call each (the OS page cache holds
the files for both); ``--repeat`` (5) calls each, median reported.  Usage:
``flock /tmp/bench.lock .venv/bin/python benchmarks/series.py``.  Prints a table and one
``BENCH_JSON`` line; target (issue 16): ours >= 3x the loop on the 40-date polygon series.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import _common as C  # noqa: E402

SHARED = Path(os.environ.get("LEAFMAP_TILES_SHARED_DATA", HERE.parent.parent / "shared" / "data"))
NDVI = "(b4-b1)/(b4+b1)"
CACHE = Path(os.environ.get("LEAFMAP_TILES_BENCH_CACHE", Path.home() / ".cache" / "leafmap_tiles_bench"))


def series_files(n: int) -> list[str]:
    """``n`` NAIP files (10 real dates; beyond 10, copies of them under later dates)."""
    real = sorted(glob.glob(str(SHARED / "naip" / "m_4709963_se_14_1_*.tif")))
    if len(real) != 10:
        raise SystemExit(f"expected the 10 NAIP quarter-quads in {SHARED / 'naip'}")
    if n <= 10:
        return real[:n]
    out_dir = CACHE / "naip_series40"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(n):
        src = real[k % 10]
        date = os.path.basename(src).rsplit("_", 1)[1][:8]
        year = int(date[:4]) + 20 * (k // 10)  # copies: a different year per round
        dst = out_dir / f"naip_{year:04d}{date[4:]}.tif"
        if not dst.exists() or dst.stat().st_size != os.path.getsize(src):
            shutil.copy(src, dst)
        out.append(str(dst))
    return sorted(out)


def field_and_points(path: str, n_points: int = 100, seed: int = 16):
    """The field polygon (EPSG:4326 shapely) and ``n_points`` (lon, lat) inside it."""
    import rasterio
    import shapely.geometry as sg
    from rasterio.warp import transform as warp_transform

    with rasterio.open(path) as ds:
        corners = [(200.3, 300.1), (210.7, 610.4), (470.2, 580.9), (455.6, 290.3)]  # (row, col)
        xs, ys = zip(*[ds.transform @ (c, r) for r, c in corners])
        lons, lats = warp_transform(ds.crs, "EPSG:4326", list(xs), list(ys))
        field = sg.Polygon(list(zip(lons, lats)))
        rng = np.random.default_rng(seed)
        rows = rng.uniform(230, 440, n_points)
        cols = rng.uniform(320, 570, n_points)
        px, py = zip(*[ds.transform @ (c, r) for r, c in zip(rows, cols)])
        plon, plat = warp_transform(ds.crs, "EPSG:4326", list(px), list(py))
    return field, list(zip(plon, plat))


def loop_polygon(files, field) -> list[tuple[float, float, int]]:
    """The plain rasterio loop: open, mask, reduce."""
    import rasterio
    import rasterio.mask
    import shapely.geometry as sg
    from rasterio.warp import transform_geom

    out = []
    geom = sg.mapping(field)
    for f in files:
        with rasterio.open(f) as ds:
            g = transform_geom("EPSG:4326", ds.crs, geom)
            arr, _ = rasterio.mask.mask(ds, [g], crop=True, indexes=[1, 4], filled=False)
        b1, b4 = arr[0].astype("float64"), arr[1].astype("float64")
        with np.errstate(all="ignore"):
            ndvi = (b4 - b1) / (b4 + b1)
        ok = ~(np.ma.getmaskarray(arr[0]) | np.ma.getmaskarray(arr[1])) & np.isfinite(ndvi.data)
        vals = ndvi.data[ok]
        out.append((float(vals.mean()), float(np.median(vals)), int(vals.size)))
    return out


def loop_points(files, points) -> np.ndarray:
    import rasterio
    from rasterio.warp import transform as warp_transform

    out = np.full((len(points), len(files)), np.nan)
    lons, lats = zip(*points)
    for j, f in enumerate(files):
        with rasterio.open(f) as ds:
            xs, ys = warp_transform("EPSG:4326", ds.crs, list(lons), list(lats))
            for i, v in enumerate(ds.sample(list(zip(xs, ys)), indexes=4, masked=True)):
                if not np.ma.getmaskarray(v)[0]:
                    out[i, j] = float(v[0])
    return out


def timed(fn, repeat: int) -> tuple[float, list[float], object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return C.median(times), times, result


def run(repeat: int = 5, sizes=(10, 40)) -> dict:
    from leafmap_tiles import Map, collections

    results = {}
    for n in sizes:
        files = series_files(n)
        field, points = field_and_points(files[0])
        m = Map(basemap=None)
        try:
            t0 = time.perf_counter()
            ts = m.add_time_slider(files, expression=NDVI, colormap="RdYlGn", vmin=-0.2, vmax=0.6)
            setup = time.perf_counter() - t0
            # correctness first: the same numbers on both sides
            ref = loop_polygon(files, field)
            t0 = time.perf_counter()
            df = ts.series(field, stats=("mean", "median"), progress=False)
            first = time.perf_counter() - t0
            for (mean, med, cnt), (_, row) in zip(ref, df.iterrows()):
                assert row["count"] == cnt and abs(row["mean"] - mean) < 1e-12 and abs(row["median"] - med) < 1e-12
            ours, ours_all, _ = timed(lambda: ts.series(field, stats=("mean", "median"), progress=False), repeat)
            peer, peer_all, _ = timed(lambda: loop_polygon(files, field), repeat)
            results[f"polygon_{n}"] = {"ours_s": ours, "loop_s": peer, "ratio": peer / ours,
                                       "ours_first_call_s": first, "slider_setup_s": setup,
                                       "ours_all": ours_all, "loop_all": peer_all, "pixels": int(df["count"].max())}
        finally:
            m.close()
        col = collections.from_items([collections.local_item(f) for f in files], name=f"naip{n}")
        ref = loop_points(files, points)
        got = col.sample_points(points, band=4, progress=False)
        np.testing.assert_array_equal(got["value"].to_numpy().reshape(len(points), n), ref)
        ours, ours_all, _ = timed(lambda: col.sample_points(points, band=4, progress=False), repeat)
        peer, peer_all, _ = timed(lambda: loop_points(files, points), repeat)
        results[f"points_{n}"] = {"ours_s": ours, "loop_s": peer, "ratio": peer / ours,
                                  "ours_all": ours_all, "loop_all": peer_all}
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    info = C.machine()
    res = run(args.repeat)
    rows = []
    for key, r in res.items():
        rows.append([key, f"{r['ours_s'] * 1000:.0f}", f"{r['loop_s'] * 1000:.0f}", f"{r['ratio']:.2f}x",
                     f"{r['ours_first_call_s'] * 1000:.0f}" if "ours_first_call_s" in r else "-"])
    print(C.fmt_table(["series", "ours ms (median)", "rasterio loop ms", "loop/ours", "ours 1st call ms"], rows))
    for n in (10, 40):
        r = res.get(f"polygon_{n}")
        if r:
            print(f"building the {n}-frame slider (add_time_slider: {n} registrations): {r['slider_setup_s']:.2f} s")
    target = res["polygon_40"]["ratio"]
    print(f"40-date polygon series: ours {target:.2f}x faster than the rasterio loop "
          f"(target >= 3x: {C.verdict(target, 3.0, True)})")
    C.emit_json("series", {"machine": info, "results": res,
                           "targets": {"polygon_40_ratio_ge_3": C.verdict(target, 3.0, True)}})


if __name__ == "__main__":
    main()

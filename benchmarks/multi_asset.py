"""NDVI tiles of a STAC item whose red and NIR bands are separate COGs (Earth Search's
layout): our tile server (assets stacked as a VRT) against rio-tiler's own multi-asset
reader (``STACReader.tile(expression=...)`` + rescale + colormap + PNG, in-process, no
HTTP: the floor TiTiler's STAC endpoints build on), and against our server on one
2-band GeoTIFF holding the same pixels (what the VRT costs).

Inputs: the NAIP quarter-quad of 2020-08-31 from ``../shared/data/naip`` (opengeos/data,
MIT), cut into red (5 m, uint8) and NIR (10 m, uint16 DN with scale/offset in STAC) COGs.
Run: ``flock /tmp/bench.lock .venv/bin/python benchmarks/multi_asset.py``; prints a
table and one ``BENCH_JSON`` line.  Tiles are fetched one at a time (p50 latency) after
one warm pass.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import morecantile
import numpy as np
import rasterio
from rasterio.shutil import copy as rio_copy

SHARED = Path(os.environ.get("LEAFMAP_TILES_DATA") or os.environ.get("LEAFMAP_TILES_SHARED_DATA")
              or Path(__file__).resolve().parents[2] / "shared" / "data")
NAIP = SHARED / "naip" / "m_4709963_se_14_1_20200831.tif"
SCALE, OFFSET = 0.025, -25.0
EXPR = "(nir-red)/(nir+red)"


def build(tmp: Path) -> dict:
    with rasterio.open(NAIP) as src:
        red, nir, prof = src.read(1), src.read(4).astype("float64"), src.profile
    h2, w2 = red.shape[0] // 2, red.shape[1] // 2
    red = red[:h2 * 2, :w2 * 2]
    nir10 = nir[:h2 * 2, :w2 * 2].reshape(h2, 2, w2, 2).mean(axis=(1, 3))
    dn = np.round((nir10 - OFFSET) / SCALE).astype("uint16")
    base = dict(driver="GTiff", count=1, crs=prof["crs"])
    t = prof["transform"]
    files = {}
    for name, arr, tr, nd in (("red", red, t, 0), ("nir", dn, t * t.scale(2), 65535)):
        with rasterio.open(tmp / "t.tif", "w", **base, dtype=arr.dtype, width=arr.shape[1], height=arr.shape[0],
                           transform=tr, nodata=nd) as d:
            d.write(arr, 1)
        files[name] = tmp / f"{name}.tif"
        rio_copy(tmp / "t.tif", files[name], driver="COG", BLOCKSIZE=256, OVERVIEWS="AUTO")
    # the same pixels as one float32 2-band file (NIR nearest-upsampled, in physical units)
    stack = np.stack([red.astype("float32"), np.repeat(np.repeat(dn * SCALE + OFFSET, 2, 0), 2, 1).astype("float32")])
    with rasterio.open(tmp / "t.tif", "w", driver="GTiff", count=2, crs=prof["crs"], dtype="float32",
                       width=red.shape[1], height=red.shape[0], transform=t, nodata=float("nan")) as d:
        d.write(stack)
    files["stack"] = tmp / "stack.tif"
    rio_copy(tmp / "t.tif", files["stack"], driver="COG", BLOCKSIZE=256, OVERVIEWS="AUTO")
    item = {"type": "Feature", "stac_version": "1.0.0", "id": "naip", "bbox": None, "geometry": None,
            "properties": {"datetime": "2020-08-31T00:00:00Z"}, "links": [], "stac_extensions": [
                "https://stac-extensions.github.io/raster/v1.1.0/schema.json"],
            "assets": {"red": {"href": str(files["red"]), "roles": ["data"]},
                       "nir": {"href": str(files["nir"]), "roles": ["data"],
                               "raster:bands": [{"scale": SCALE, "offset": OFFSET, "nodata": 65535}]}}}
    with rasterio.open(files["red"]) as d:
        from rasterio.warp import transform_bounds

        w, s, e, n = transform_bounds(d.crs, "EPSG:4326", *d.bounds)
    item["bbox"] = [w, s, e, n]
    item["geometry"] = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
    (tmp / "item.json").write_text(json.dumps(item))
    return {"files": files, "item": item, "bounds": (w, s, e, n)}


def tiles_of(bounds, zooms=(15, 16)) -> list:
    tms = morecantile.tms.get("WebMercatorQuad")
    return [(t.z, t.x, t.y) for z in zooms for t in tms.tiles(*bounds, zooms=[z])]


def p50(fn, tiles) -> float:
    for t in tiles:
        fn(t)
    times = []
    for t in tiles:
        t0 = time.perf_counter()
        fn(t)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    if not NAIP.exists():
        sys.exit(f"{NAIP} not found (set LEAFMAP_TILES_DATA)")
    tmp = Path(tempfile.mkdtemp(prefix="bench_multi_asset_"))
    built = build(tmp)
    tiles = tiles_of(built["bounds"])

    from leafmap_tiles import Map

    m = Map(basemap=None)
    ours = m.add_raster(built["item"], assets=["red", "nir"], expression=EXPR, colormap="RdYlGn", vmin=-0.2, vmax=0.9)
    stack = m.add_raster(str(built["files"]["stack"]), expression="(b2-b1)/(b2+b1)", colormap="RdYlGn",
                         vmin=-0.2, vmax=0.9)
    srv = m.server

    def ours_tile(t):
        return srv.tile(ours.source_id, *t, style=ours.style)

    def stack_tile(t):
        return srv.tile(stack.source_id, *t, style=stack.style)

    from rio_tiler.colormap import cmap
    from rio_tiler.io import STACReader

    rdr = STACReader(str(tmp / "item.json"))
    cm = cmap.get("rdylgn")

    def floor_tile(t):
        z, x, y = t
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from rio_tiler.errors import TileOutsideBounds

            try:
                # rio-tiler 9 names the bands of assets=[red, nir] b1, b2; unscale applies STAC scale/offset
                img = rdr.tile(x, y, z, assets=["red", "nir"], expression="(b2-b1)/(b2+b1)", unscale=True)
            except TileOutsideBounds:
                return b""
            img.rescale(in_range=((-0.2, 0.9),))
            return img.render(img_format="PNG", colormap=cm)

    rows = {"leafmap_tiles (VRT of 2 COGs, HTTP)": p50(ours_tile, tiles),
            "leafmap_tiles (one 2-band file, HTTP)": p50(stack_tile, tiles),
            "rio-tiler STACReader in-process (no HTTP)": p50(floor_tile, tiles)}
    m.close()
    print(f"{len(tiles)} NDVI tiles z15-16, one at a time, p50 latency (ms); machine shared with other sessions")
    for k, v in rows.items():
        print(f"  {k:45s} {v:7.2f}")
    vals = list(rows.values())
    out = {"tiles": len(tiles), "p50_ms": rows, "ratio_vrt_vs_stack": vals[0] / vals[1],
           "ratio_vrt_vs_rio_tiler_stac": vals[0] / vals[2]}
    print(f"ratio ours(VRT)/ours(one file) = {out['ratio_vrt_vs_stack']:.2f}; "
          f"ours(VRT)/rio-tiler STACReader = {out['ratio_vrt_vs_rio_tiler_stac']:.2f} (lower is faster)")
    print("BENCH_JSON " + json.dumps(out))


if __name__ == "__main__":
    main()

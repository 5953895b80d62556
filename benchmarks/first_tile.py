"""Time from ``import`` to the first tile's bytes, in a fresh Python process:

    ours:     from leafmap_tiles import Map; Map().add_raster(path)        (.venv)
    leafmap:  import leafmap; leafmap.Map().add_raster(path)  (localtileserver; peers venv)

then one HTTP GET of the same tile (the raster's centre tile at the zoom that fits it)
from the layer's URL.  Median of 5 fresh processes each, alternating.

    .venv/bin/python benchmarks/first_tile.py [--runs 5] [--path FILE]

Prints a table and a ``BENCH_JSON`` line with the ratio and PASS/FAIL
(target: ours <= 0.8 x leafmap's).
"""

import time

T0 = time.perf_counter()  # before any import of the child's work

import sys  # noqa: E402


def child(kind: str, path: str, z: int, x: int, y: int) -> None:
    import json
    import urllib.request

    if kind == "ours":
        from leafmap_tiles import Map

        m = Map()
        layer = m.add_raster(path)
        url = layer.url
        t_layer = time.perf_counter() - T0
    else:
        import leafmap

        m = leafmap.Map()
        m.add_raster(path)
        url = m.layers[-1].url
        t_layer = time.perf_counter() - T0
    tile_url = url.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))
    with urllib.request.urlopen(tile_url, timeout=60) as r:
        body = r.read()
        status = r.status
    t_tile = time.perf_counter() - T0
    print(json.dumps({"kind": kind, "import_to_layer_s": t_layer, "import_to_tile_s": t_tile, "status": status,
                      "bytes": len(body), "png": body[:8] == b"\x89PNG\r\n\x1a\n"}), flush=True)


def main() -> None:
    import argparse
    import json
    import os
    import subprocess
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _common as C

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--path", default=None, help="raster (default: the 10980x10980 uint16 COG of tiles.py)")
    args = ap.parse_args()
    path = Path(args.path) if args.path else C.s2_like_cog()

    import morecantile
    import rasterio
    from rasterio.warp import transform_bounds

    with rasterio.open(path) as ds:
        w, s, e, n = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
    tms = morecantile.tms.get("WebMercatorQuad")
    z = 0
    while z < 18:  # deepest zoom at which the raster fits in a 2x2 tile window
        a, b = tms.tile(w, n, z + 1), tms.tile(e, s, z + 1)
        if b.x - a.x > 1 or b.y - a.y > 1:
            break
        z += 1
    t = tms.tile((w + e) / 2, (s + n) / 2, z)
    info = C.machine()
    print(f"# machine: {info['cpus']} cores, {info['memory_gib']} GiB; file {path}; tile {t.z}/{t.x}/{t.y}")
    with open(path, "rb") as fh:  # page cache warm for both
        while fh.read(1 << 24):
            pass
    pythons = {"ours": sys.executable, "leafmap": C.peer_bin("python")}
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="0")
    res = {"ours": [], "leafmap": []}
    for i in range(args.runs):
        for kind in (("ours", "leafmap") if i % 2 == 0 else ("leafmap", "ours")):
            p = subprocess.run([pythons[kind], __file__, "--child", kind, str(path), str(t.z), str(t.x), str(t.y)],
                               capture_output=True, text=True, timeout=300, env=env, cwd="/tmp")
            line = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
            if p.returncode or not line:
                raise RuntimeError(f"{kind} child failed ({p.returncode}): {p.stderr[-2000:]}")
            d = json.loads(line[-1])
            if d["status"] != 200 or not d["png"]:
                raise RuntimeError(f"{kind}: bad tile {d}")
            res[kind].append(d)
    rows = []
    med = {}
    for kind in ("ours", "leafmap"):
        tiles = [d["import_to_tile_s"] for d in res[kind]]
        layers = [d["import_to_layer_s"] for d in res[kind]]
        med[kind] = C.median(tiles)
        rows.append([kind, C.median(layers), med[kind], " ".join(f"{v:.2f}" for v in tiles)])
    print(C.fmt_table(["product", "import->layer s (median)", "import->first tile s (median)", "each run s"], rows))
    ratio = med["ours"] / med["leafmap"]
    v = C.verdict(ratio, 0.8, False)
    print(f"ours/leafmap = {ratio:.2f} (target <= 0.8) {v}")
    C.emit_json("first_tile", {"machine": info, "file": str(path), "tile": [t.z, t.x, t.y],
                               "median_s": med, "runs": res, "ratios": {"first_tile_vs_leafmap": ratio},
                               "verdicts": {"first_tile_vs_leafmap": v}, "pass": v == "PASS"})


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
    else:
        main()

"""Store metadata: ``leafmap-tiles ingest`` vs ``terracotta ingest`` on the same real files.

    .venv/bin/python benchmarks/ingest.py [--runs 3] [--no-large]

The files (every real raster of ../shared/data that both tools accept, plus the
10980x10980 uint16 COG of tiles.py) are linked as ``{name}.tif`` into one folder, and
each CLI ingests the pattern ``{name}.tif`` into a new SQLite database in a fresh
process (median of ``--runs``, alternating).  Also the metadata time alone, per file,
in one process per tool (imports excluded).  The two databases are then read with
``leafmap_tiles.store`` and compared field by field.  Target: ours >= 1.5x terracotta's
speed with equal results.
"""

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

FILES = (
    [f"naip/{p.name}" for p in sorted((C.SHARED_DATA / "naip").glob("*.tif"))]
    + [f"landsat_annual/{p.name}" for p in sorted((C.SHARED_DATA / "landsat_annual").glob("*.tif"))]
    + [f"cog/{n}.tif" for n in ("cog", "cog_int16", "cog_nodata", "cog_nodata_nan", "cog_dateline", "cog_cmap",
                                "cog_rgb", "cog_rgba", "mosaic_cog1", "mosaic_cog2", "cog_scale")]
    + [f"misc/{n}.tif" for n in ("RGB.byte", "bahamas_rgb", "landsat", "co_elevation_roi", "shade", "nlcd",
                                 "bremen_sea_ice_conc_2022_9_9", "rmnp-dem", "rmnp-rgb")]
    + ["large/srtm90.tif", "large/bess_NDVI_maximum_striped.tif", "large/bess_NDVI_maximum_cog.tif"]
)

# per-file metadata time, in one process per tool (run with that tool's python)
TIMER = r"""
import json, sys, time
files = json.loads(sys.argv[1]); kind = sys.argv[2]
if kind == "ours":
    from leafmap_tiles.store import compute_metadata
else:
    from terracotta import get_driver
    compute_metadata = get_driver(sys.argv[3]).compute_metadata
out = {}
for name, path in files.items():
    t0 = time.perf_counter()
    compute_metadata(path)
    out[name] = time.perf_counter() - t0
print(json.dumps(out))
"""


def link_set(large: bool) -> dict:
    d = C.CACHE / ("ingest_set" + ("" if large else "_small"))
    d.mkdir(parents=True, exist_ok=True)
    files = {}
    for rel in FILES:
        src = C.SHARED_DATA / rel
        if not src.exists():
            continue
        name = re.sub(r"[^A-Za-z0-9]", "", rel.replace(".tif", "").replace("/", "x"))
        files[name] = src
    if large:
        files["s2like"] = C.s2_like_cog()
    for p in d.glob("*.tif"):
        if p.stem not in files:
            p.unlink()
    for name, src in files.items():
        link = d / f"{name}.tif"
        if not link.exists():
            link.symlink_to(src)
    return {"dir": d, "files": {n: str(d / f"{n}.tif") for n in files}}


def compare(a: dict, b: dict) -> dict:
    """Largest differences between two metadata dicts (relative to the value range)."""
    span = max(abs(a["range"][1] - a["range"][0]), 1e-12)
    diff = {
        "range": max(abs(x - y) for x, y in zip(a["range"], b["range"])) / span,
        "mean": abs(a["mean"] - b["mean"]) / span,
        "stdev": abs(a["stdev"] - b["stdev"]) / span,
        "percentiles": max(abs(x - y) for x, y in zip(a["percentiles"], b["percentiles"])) / span,
        "valid_percentage": abs(a["valid_percentage"] - b["valid_percentage"]),
        "bounds": max(abs(x - y) for x, y in zip(a["bounds"], b["bounds"])),
        "n_percentiles": abs(len(a["percentiles"]) - len(b["percentiles"])),
    }
    ha, hb = _hull_area(a["convex_hull"]), _hull_area(b["convex_hull"])
    diff["convex_hull_area"] = abs(ha - hb) / max(ha, hb, 1e-12)
    return diff


def _hull_area(geom) -> float:
    rings = geom["coordinates"] if geom["type"] == "Polygon" else [r for p in geom["coordinates"] for r in p]
    area = 0.0
    for ring in rings[:1] if geom["type"] == "Polygon" else rings:
        area += abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:]))) / 2
    return area


TOL = {"range": 1e-6, "mean": 1e-6, "stdev": 1e-6, "percentiles": 1e-6, "valid_percentage": 1e-6, "bounds": 1e-6,
       "n_percentiles": 0, "convex_hull_area": 1e-6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-large", action="store_true", help="leave out the 10980x10980 COG")
    args = ap.parse_args()
    s = link_set(not args.no_large)
    pattern = str(s["dir"] / "{name}.tif")
    info = C.machine()
    print(f"# machine: {info['cpus']} cores, {info['memory_gib']} GiB, load average {info['loadavg_at_start']}; "
          f"{len(s['files'])} files")
    for p in s["files"].values():  # page cache warm for both
        with open(p, "rb") as fh:
            while fh.read(1 << 24):
                pass
    ours_cli = str(Path(sys.executable).parent / "leafmap-tiles")
    cmds = {"ours": [ours_cli, "ingest", pattern, "-q", "-o"], "terracotta": [C.peer_bin("terracotta"), "ingest", pattern,
                                                                              "-q", "-o"]}
    dbs = {k: C.CACHE / f"ingest_{k}.sqlite" for k in cmds}
    walls = {k: [] for k in cmds}
    for i in range(args.runs):
        for k in (("ours", "terracotta") if i % 2 == 0 else ("terracotta", "ours")):
            dbs[k].unlink(missing_ok=True)
            t0 = time.perf_counter()
            p = subprocess.run(cmds[k] + [str(dbs[k])], capture_output=True, text=True)
            walls[k].append(time.perf_counter() - t0)
            if p.returncode:
                raise RuntimeError(f"{k} ingest failed: {p.stderr[-2000:]}")
    # metadata time alone, per file
    per_file = {}
    pythons = {"ours": sys.executable, "terracotta": C.peer_bin("python")}
    for k in ("ours", "terracotta"):
        p = subprocess.run([pythons[k], "-c", TIMER, json.dumps(s["files"]), k, str(dbs[k])], capture_output=True,
                           text=True)
        if p.returncode:
            raise RuntimeError(f"{k} metadata timing failed: {p.stderr[-2000:]}")
        per_file[k] = json.loads(p.stdout.strip().splitlines()[-1])

    # equal results: read both databases with our store
    from leafmap_tiles import store

    ks = {k: store.open(str(dbs[k])) for k in dbs}
    names = sorted(s["files"])
    worst = {f: 0.0 for f in TOL}
    unequal = []
    for n in names:
        a, b = ks["ours"].get_metadata([n]), ks["terracotta"].get_metadata([n])
        d = compare(a, b)
        for f, v in d.items():
            worst[f] = max(worst[f], v)
        bad = [f for f, v in d.items() if not v <= TOL[f]]
        if bad:
            unequal.append({"file": n, "fields": {f: d[f] for f in bad}})
    equal = not unequal

    med = {k: C.median(v) for k, v in walls.items()}
    tot = {k: sum(per_file[k].values()) for k in per_file}
    rows = [[k, med[k], " ".join(f"{v:.2f}" for v in walls[k]), tot[k]] for k in ("ours", "terracotta")]
    print(C.fmt_table(["tool", "CLI ingest s (median)", "each run s", "metadata only s (sum over files)"], rows))
    slow = sorted(names, key=lambda n: -per_file["terracotta"][n])[:6]
    print(C.fmt_table(["file", "ours s", "terracotta s", "speed-up"],
                      [[n, per_file["ours"][n], per_file["terracotta"][n],
                        per_file["terracotta"][n] / per_file["ours"][n]] for n in slow]))
    speed = med["terracotta"] / med["ours"]
    speed_meta = tot["terracotta"] / tot["ours"]
    v = "PASS" if speed >= 1.5 and equal else "FAIL"
    print("largest differences (relative to each file's value range): "
          + ", ".join(f"{f}={worst[f]:.2g}" for f in worst))
    print(f"equal results: {equal}" + (f" ({len(unequal)} files differ: {unequal[:3]})" if unequal else ""))
    print(f"speed ours vs terracotta: CLI ingest {speed:.2f}x, metadata only {speed_meta:.2f}x "
          f"(target >= 1.5x with equal results) {v}")
    C.emit_json("ingest", {"machine": info, "files": len(names), "cli_ingest_s": walls, "metadata_s_per_file": per_file,
                           "ratios": {"ingest_speed_vs_terracotta": speed, "metadata_speed_vs_terracotta": speed_meta},
                           "equal_results": equal, "unequal": unequal, "largest_differences": worst,
                           "verdicts": {"ingest_vs_terracotta": v}, "pass": v == "PASS"})


if __name__ == "__main__":
    C.exit_on_sigterm()
    main()

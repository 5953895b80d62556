"""Soak: does a server's memory plateau under a long stream of tiles?  leafmap_tiles'
session server, ``leafmap-tiles serve`` and ``terracotta serve``, one after another.

    flock /tmp/bench.lock .venv/bin/python benchmarks/soak.py [--runs 10] [--tiles 2000] [--only ours,serve,terracotta]
    flock /tmp/bench.lock .venv/bin/python benchmarks/soak.py --load tiles [--runs 5] [--only ours,serve,serve2]

``--load tiles`` (issue 18) runs benchmarks/tiles.py's load instead (both of its files,
500 distinct tiles each, 16 clients) ``--runs`` times back to back on our servers and
reports each run's peak RSS; target: the last run's peak <= 1.1x the second's.

Each server serves ``../shared/data/large/srtm90.tif`` (int16 SRTM, 4269x2465, COG) and
gets ``--runs`` runs of the same ``--tiles`` distinct tiles (zooms 9-15, shuffled anew
each run) over 32 concurrent keep-alive connections, each tile with one of 40 stretch
ranges in turn (so the style caches see a stream of styles, as with a user dragging
vmin/vmax).  After each run (and 1 s of rest) the RSS of the server's whole process tree
is read.  Target of issue 19: the last run's RSS within 5 % of the third run's, and 0
errors.  Our servers run with their defaults (``GDAL_CACHEMAX=128``, no ``VSI_CACHE``, two
malloc arenas and a fixed mmap threshold, caches of 256 entries); terracotta with its own.  Prints a table and one
``BENCH_JSON`` line.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

CONCURRENCY = 32
N_STYLES = 40
FILE = C.SRTM
KEY = "srtm"


def tree_rss(pid: int) -> int:
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root] + root.children(recursive=True)
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def styles() -> list[tuple[int, int]]:
    return [(500 + 25 * i, 3500 + 10 * i) for i in range(N_STYLES)]


class Session:
    name = "leafmap_tiles session server"

    def start(self) -> int:
        from leafmap_tiles.client import TileServer

        self.ts = TileServer().start()
        self.port = self.ts.port
        self.sid = self.ts.register(str(FILE), {"vmin": 500, "vmax": 3500})["id"]
        return self.ts.pid

    def path(self, z, x, y, lo, hi) -> str:
        return f"/{self.ts.token}/tiles/{self.sid}/{z}/{x}/{y}.png?vmin={lo}&vmax={hi}"

    def stop(self) -> None:
        self.ts.close()


class Serve:
    name = "leafmap-tiles serve"

    def start(self) -> int:
        from leafmap_tiles import store

        self.tmp = tempfile.mkdtemp(prefix="soak_")
        db = os.path.join(self.tmp, "db.sqlite")
        ks = store.open(db)
        ks.create(["name"])
        ks.insert([KEY], str(FILE))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "leafmap_tiles.cli", "serve", "-d", db, "--port", "0"],
            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if "http://" not in line:
            raise RuntimeError(f"serve did not start: {line!r}")
        self.port = int(line.split("http://", 1)[1].split()[0].rsplit(":", 1)[1])
        C.wait_http(f"http://127.0.0.1:{self.port}/keys", proc=self.proc)
        return self.proc.pid

    def path(self, z, x, y, lo, hi) -> str:
        return f"/singleband/{KEY}/{z}/{x}/{y}.png?stretch_range=[{lo},{hi}]"

    def stop(self) -> None:
        import shutil

        C.stop_group(self.proc)
        shutil.rmtree(self.tmp, ignore_errors=True)


class Terracotta(Serve):
    name = "terracotta serve"

    def start(self) -> int:
        d = C.CACHE / "terracotta_soak"
        d.mkdir(parents=True, exist_ok=True)
        link = d / f"{KEY}.tif"
        if not link.exists():
            link.symlink_to(FILE)
        db = d / "soak.sqlite"
        if not db.exists():
            subprocess.run([C.peer_bin("terracotta"), "ingest", str(d / "{name}.tif"), "-o", str(db), "-q"], check=True)
        self.tmp = None
        self.port = C.free_port()
        self.proc = subprocess.Popen(
            [C.peer_bin("terracotta"), "serve", "-d", str(db), "--port", str(self.port)],
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        C.wait_http(f"http://127.0.0.1:{self.port}/keys", proc=self.proc)
        return self.proc.pid

    def stop(self) -> None:
        C.stop_group(self.proc)


SERVERS = {"ours": Session, "serve": Serve, "terracotta": Terracotta}


def soak(cls, tiles, runs: int, seed: int) -> dict:
    srv = cls()
    pid = srv.start()
    out = {"rss_mib": [], "tiles_per_s": [], "errors": 0, "first_errors": []}
    try:
        st = styles()
        for run in range(runs):
            order = list(tiles)
            random.Random(seed + run).shuffle(order)
            paths = [srv.path(*t, *st[i % len(st)]) for i, t in enumerate(order)]
            r = C.load("127.0.0.1", srv.port, paths, CONCURRENCY)
            time.sleep(1.0)
            out["rss_mib"].append(tree_rss(pid) / 2**20)
            out["tiles_per_s"].append(r.tiles_per_s())
            out["errors"] += len(r.errors)
            out["first_errors"] += r.errors[: max(0, 3 - len(out["first_errors"]))]
            print(f"  {cls.name}: run {run + 1}/{runs}: {r.ok} tiles, {r.tiles_per_s():.0f} tiles/s, "
                  f"RSS {out['rss_mib'][-1]:.0f} MiB, errors {len(r.errors)}", flush=True)
    finally:
        srv.stop()
    rss = out["rss_mib"]
    out["last_vs_third"] = rss[-1] / rss[2] if len(rss) >= 3 and rss[2] else float("nan")
    return out


# ------------------------------------------------------- --load tiles (issue 18)
TILES_TARGET = 1.1  # last run's peak RSS <= 1.1 x the second run's


def tiles_soak(name: str, runs: int, n_tiles: int, seed: int) -> dict:
    """``runs`` back-to-back runs of benchmarks/tiles.py's load (both files, the same
    ``n_tiles`` distinct tiles each, 16 clients) on one server; the peak RSS of its
    process tree during each run."""
    import tiles as T

    files = T.all_files()
    lists = {key: C.choose_tiles(f["path"], n_tiles, seed + 100 + i) for i, (key, f) in enumerate(files.items())}
    if name == "serve":
        srv = T.OursServe(files)
        srv.processes = 1
    else:
        srv = {"ours": T.Ours, "serve2": T.OursServe}[name](files)
    pid = srv.start()
    sampler = C.ProcSampler(pid)
    out = {"peak_rss_mib": [], "tiles_per_s": [], "errors": 0, "first_errors": []}
    try:
        for run in range(runs):
            sampler.peak_rss = 0
            tps = []
            for key in files:
                r = C.load("127.0.0.1", srv.port, [srv.tile_path(key, *t) for t in lists[key]], T.CONCURRENCY)
                tps.append(r.tiles_per_s())
                out["errors"] += len(r.errors)
                out["first_errors"] += r.errors[: max(0, 3 - len(out["first_errors"]))]
            out["peak_rss_mib"].append(sampler.peak_rss / 2**20)
            out["tiles_per_s"].append(tps)
            print(f"  {name}: run {run + 1}/{runs}: peak RSS {out['peak_rss_mib'][-1]:.0f} MiB, tiles/s "
                  + "/".join(f"{v:.0f}" for v in tps), flush=True)
    finally:
        sampler.stop()
        srv.stop()
    peaks = out["peak_rss_mib"]
    out["last_vs_second"] = peaks[-1] / peaks[1] if len(peaks) >= 2 and peaks[1] else float("nan")
    return out


def main_tiles(args) -> None:
    names = {"ours": "leafmap_tiles session server", "serve": "leafmap-tiles serve",
             "serve2": "leafmap-tiles serve --processes 2"}
    only = [n for n in args.only.split(",") if n in names] if args.only != DEFAULT_ONLY else list(names)
    print(f"machine: {C.machine()}", flush=True)
    results = {n: tiles_soak(n, args.runs, args.tiles, args.seed) for n in only}
    rows = []
    for n, r in results.items():
        r["verdict"] = "PASS" if r["last_vs_second"] <= TILES_TARGET and r["errors"] == 0 else "FAIL"
        rows.append([names[n], " ".join(f"{v:.0f}" for v in r["peak_rss_mib"]), r["last_vs_second"],
                     r["errors"], r["verdict"]])
    print()
    print(f"{args.runs} back-to-back runs of benchmarks/tiles.py's load (s2 + ndvi, {args.tiles} tiles each, "
          "16 clients); peak RSS (MiB) of the server's process tree during each run")
    print(C.fmt_table(["server", "peak RSS per run MiB", "last/second", "errors",
                       f"last <= {TILES_TARGET}x second, 0 errors"], rows))
    C.emit_json("soak_tiles", {"runs": args.runs, "tiles": args.tiles, "results": results, "machine": C.machine()})


DEFAULT_ONLY = "ours,serve,terracotta"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--tiles", type=int, default=2000)
    ap.add_argument("--only", default=DEFAULT_ONLY,
                    help="with --load tiles: ours (session server), serve, serve2 (serve --processes 2)")
    ap.add_argument("--seed", type=int, default=20240619)
    ap.add_argument("--load", choices=["srtm", "tiles"], default="srtm",
                    help="srtm: the issue-19 soak below; tiles: --runs (default 5) runs of benchmarks/tiles.py's "
                         "load, target last run's peak RSS <= 1.1x the second's (issue 18)")
    args = ap.parse_args()
    C.exit_on_sigterm()
    if args.load == "tiles":
        if "--runs" not in sys.argv:
            args.runs = 5
        if "--tiles" not in sys.argv:
            args.tiles = 500
        return main_tiles(args)
    tiles = C.choose_tiles(FILE, args.tiles, args.seed)
    print(f"machine: {C.machine()}", flush=True)
    results = {}
    for key in args.only.split(","):
        results[key] = soak(SERVERS[key], tiles, args.runs, args.seed)
    rows = []
    for key, r in results.items():
        rss = r["rss_mib"]
        verdict = "PASS" if abs(r["last_vs_third"] - 1) <= 0.05 and r["errors"] == 0 else "FAIL"
        r["verdict"] = verdict
        rows.append([SERVERS[key].name, " ".join(f"{v:.0f}" for v in rss), r["last_vs_third"],
                     C.median(r["tiles_per_s"]), r["errors"], verdict])
    print()
    print(f"{args.runs} runs x {args.tiles} tiles, {CONCURRENCY} clients, {N_STYLES} stretch ranges; "
          "RSS (MiB) of the server's process tree after each run")
    print(C.fmt_table(["server", "RSS after each run MiB", "last/third", "tiles/s (median run)", "errors",
                       "last within 5 % of third, 0 errors"], rows))
    C.emit_json("soak", {"runs": args.runs, "tiles": args.tiles, "concurrency": CONCURRENCY, "results": results,
                         "machine": C.machine()})


if __name__ == "__main__":
    main()

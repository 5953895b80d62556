"""Tiles per second, side by side: leafmap_tiles (the session server, and ``leafmap-tiles
serve --processes 2``) vs titiler, terracotta, localtileserver.

    .venv/bin/python benchmarks/tiles.py [--rounds 2] [--tiles 500] [--only ours,titiler]

One run starts each server as its own process group on 127.0.0.1 (one at a time; every
server serves both files), checks that all return the same pixels for the warm-up tiles
(same style: grey, explicit vmin/vmax, nearest resampling), then for each file: 20
warm-up tiles, the same 500 distinct tiles (zooms 9-15) over 16 concurrent keep-alive
connections, then 100 other tiles one at a time.  Each server is stopped by its process
group and its port checked free.  Also the in-process floor (rio-tiler in 1 and 2
threads, no HTTP).  Prints a table and a ``BENCH_JSON`` line with ratios and PASS/FAIL.
With ``--rounds N`` the servers run N times in alternating order; each server's best
round counts (other load on the machine only ever slows a round down).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

CONCURRENCY = 16
N_WARM = 20
N_SEQ = 100
TARGETS = {  # (peer, metric): (target ratio, higher is better)
    "tps_vs_titiler": (1.8, True),
    "tps_vs_terracotta": (1.8, True),
    "tps_vs_localtileserver": (8.0, True),
    "seq_p50_vs_titiler": (0.8, False),
    "tps_vs_floor_2threads": (0.9, True),
}


# ------------------------------------------------------------------------ servers
#: environment of our servers only (``--ours-env``), set while they start: the
#: memory/throughput sweep of issue 18 varies GDAL and malloc settings of ours while the
#: peers keep their defaults
OURS_ENV: dict[str, str] = {}


class _ours_env:
    """Context manager: :data:`OURS_ENV` in this process's environment while one of our
    servers starts (the child inherits it), the old values back afterwards."""

    def __enter__(self):
        self.old = {k: os.environ.get(k) for k in OURS_ENV}
        os.environ.update(OURS_ENV)

    def __exit__(self, *exc):
        for k, v in self.old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        return False


class Server:
    name = ""

    def __init__(self, files: dict):
        self.files = files  # key -> {"path", "vmin", "vmax"}
        self.port = None
        self.proc = None
        self.sampler = None

    def tile_path(self, key, z, x, y) -> str:
        raise NotImplementedError

    def stop(self) -> dict:
        pgid = self.proc.pid
        C.stop_group(self.proc)
        return {"group_gone": not C.group_alive(pgid), "port_free": C.port_is_free(self.port)}


class Ours(Server):
    name = "leafmap_tiles"

    def start(self):
        from leafmap_tiles.client import TileServer

        with _ours_env():
            self.ts = TileServer().start()
        self.port = self.ts.port
        self.templates = {}
        for key, f in self.files.items():
            reg = self.ts.register(str(f["path"]), {"vmin": f["vmin"], "vmax": f["vmax"]})
            u = urlsplit(self.ts.tile_url(reg["id"], reg["style"]))
            self.templates[key] = u.path + ("?" + u.query if u.query else "")
        return self.ts.pid

    def tile_path(self, key, z, x, y):
        return self.templates[key].replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))

    def stop(self):
        pid = self.ts.pid
        self.ts.close()  # kills the child's process group
        return {"group_gone": not C.group_alive(pid), "port_free": C.port_is_free(self.port)}


class Titiler(Server):
    name = "titiler"

    def start(self):
        self.port = C.free_port()
        self.proc = subprocess.Popen(
            [C.peer_bin("uvicorn"), "titiler.application.main:app", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning", "--no-access-log"],
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        C.wait_http(f"http://127.0.0.1:{self.port}/healthz", proc=self.proc)
        return self.proc.pid

    def tile_path(self, key, z, x, y):
        f = self.files[key]
        return (f"/cog/tiles/WebMercatorQuad/{z}/{x}/{y}.png?url={quote(str(f['path']))}"
                f"&rescale={f['vmin']},{f['vmax']}")


class Terracotta(Server):
    name = "terracotta"

    def db(self) -> Path:
        """Ingested once with ``terracotta ingest`` (metadata included) and cached."""
        d = C.CACHE / "terracotta"
        d.mkdir(parents=True, exist_ok=True)
        for key, f in self.files.items():
            link = d / f"{key}.tif"
            if not link.exists():
                link.symlink_to(f["path"])
        db = d / ("tiles_" + "_".join(sorted(self.files)) + ".sqlite")
        if not db.exists():
            subprocess.run([C.peer_bin("terracotta"), "ingest", str(d / "{name}.tif"), "-o", str(db), "-q"],
                           check=True)
        return db

    def start(self):
        db = self.db()
        self.port = C.free_port()
        env = dict(os.environ, TC_RESAMPLING_METHOD="nearest", TC_REPROJECTION_METHOD="nearest")
        self.proc = subprocess.Popen(
            [C.peer_bin("terracotta"), "serve", "-d", str(db), "--port", str(self.port)],
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=open(C.CACHE / "terracotta.log", "w"), env=env)
        C.wait_http(f"http://127.0.0.1:{self.port}/keys", proc=self.proc)
        return self.proc.pid

    def tile_path(self, key, z, x, y):
        f = self.files[key]
        return f"/singleband/{key}/{z}/{x}/{y}.png?stretch_range=[{f['vmin']},{f['vmax']}]"


class LocalTileServer(Server):
    name = "localtileserver"

    def start(self):
        self.port = C.free_port()
        self.proc = subprocess.Popen(
            [C.peer_bin("python"), str(C.HERE / "_peer_server.py"), "localtileserver", str(self.port),
             *[str(f["path"]) for f in self.files.values()]],
            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("localtileserver did not start")
        self.templates = {}
        for key, f in self.files.items():
            u = urlsplit(json.loads(line)["urls"][str(f["path"])])
            q = u.query.replace("vmin=0", f"vmin={f['vmin']}").replace("vmax=1", f"vmax={f['vmax']}")
            self.templates[key] = u.path + "?" + q
        C.wait_http(f"http://127.0.0.1:{self.port}/api/metadata?filename={quote(str(next(iter(self.files.values()))['path']))}",
                    proc=self.proc)
        return self.proc.pid

    def tile_path(self, key, z, x, y):
        return self.templates[key].replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))


class OursServe(Server):
    """``leafmap-tiles serve --processes 2`` (issue 18) on a key store of both files
    (keys: the file's name), Terracotta's tile route with the same stretch.  It renders
    as ``terracotta serve`` (values mapped to 1..255, 0 transparent), with nearest
    resampling and reprojection as every other server here (``--resampling nearest
    --reprojection nearest``, as terracotta runs with ``TC_RESAMPLING_METHOD=nearest
    TC_REPROJECTION_METHOD=nearest``); the row ``serve2avg`` keeps Terracotta's default
    average resampling and bilinear warp (more work per tile)."""
    name = "leafmap-tiles serve --processes 2"
    processes = 2
    methods = ("--resampling", "nearest", "--reprojection", "nearest")

    def db(self) -> Path:
        from leafmap_tiles import store

        d = C.CACHE / "ours_serve"
        d.mkdir(parents=True, exist_ok=True)
        db = d / ("tiles_" + "_".join(sorted(self.files)) + ".sqlite")
        if not db.exists():
            tmp = db.with_suffix(".tmp.sqlite")
            if tmp.exists():
                tmp.unlink()
            ks = store.open(str(tmp))
            ks.create(["name"])
            for key, f in self.files.items():
                ks.insert([key], str(f["path"]))
            tmp.rename(db)
        return db

    def start(self):
        db = self.db()
        with _ours_env():
            self.proc = self._popen(db)
        line = self.proc.stdout.readline()
        if "http://" not in line:
            raise RuntimeError(f"serve did not start: {line!r}")
        self.port = int(line.split("http://", 1)[1].split()[0].rsplit(":", 1)[1])
        C.wait_http(f"http://127.0.0.1:{self.port}/keys", proc=self.proc)
        return self.proc.pid

    def _popen(self, db):
        return subprocess.Popen(
            [sys.executable, "-m", "leafmap_tiles.cli", "serve", "-d", str(db), "--port", "0",
             "--processes", str(self.processes), *self.methods],
            start_new_session=True, stdout=subprocess.PIPE, stderr=open(C.CACHE / "ours_serve.log", "w"), text=True)

    def tile_path(self, key, z, x, y):
        f = self.files[key]
        return f"/singleband/{key}/{z}/{x}/{y}.png?stretch_range=[{f['vmin']},{f['vmax']}]"


class OursServeAverage(OursServe):
    """``serve --processes 2`` with Terracotta's default resampling (average, bilinear warp)."""
    name = "leafmap-tiles serve --processes 2 (average)"
    methods = ()


SERVERS = {"ours": Ours, "titiler": Titiler, "terracotta": Terracotta, "localtileserver": LocalTileServer,
           "serve2": OursServe, "serve2avg": OursServeAverage}
#: targets of ``serve --processes 2`` (issue 18): tiles/s ratios, higher is better
SERVE2_TARGETS = {"tps_vs_titiler": 3.0, "tps_vs_localtileserver": 10.0}
#: the session server's peak RSS / titiler's (issue 18), lower is better
RSS_TARGET = 1.2


# ------------------------------------------------------------------ pixel check
def decode(png: bytes, terracotta: bool) -> tuple[np.ndarray, np.ndarray]:
    """(grey 0..255 as float, opaque) of a grey PNG; terracotta maps [vmin, vmax] to
    1..255 (0 is its transparent value), the others to 0..255."""
    from PIL import Image

    im = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
    grey = im[..., 0].astype("float64")
    if terracotta:
        grey = (grey - 1.0) * 255.0 / 254.0
    return grey, im[..., 3] > 0


def compare(ref: dict, other: dict, terracotta: bool) -> dict:
    """Share of pixels with the same transparency, and of pixels opaque in both whose
    grey level differs by at most the rounding step (1.5 levels)."""
    same_alpha = close = both = total = 0
    absdiff = 0.0
    for path_key, body in ref.items():
        if path_key not in other:
            continue
        g0, a0 = decode(body, False)
        g1, a1 = decode(other[path_key], terracotta)
        total += a0.size
        same_alpha += int((a0 == a1).sum())
        m = a0 & a1
        both += int(m.sum())
        close += int((np.abs(g0 - g1)[m] <= 1.5).sum())
        absdiff += float(np.abs(g0 - g1)[m].sum())
    return {"alpha_agree": same_alpha / total if total else float("nan"),
            "grey_agree": close / both if both else float("nan"), "tiles": len(ref),
            "mean_abs_diff": absdiff / both if both else float("nan")}


# ------------------------------------------------------------------------- run
def run_server(cls, files, lists) -> dict:
    srv = cls(files)
    t0 = time.perf_counter()
    pid = srv.start()
    startup = time.perf_counter() - t0
    sampler = C.ProcSampler(pid)
    out = {"startup_s": startup, "files": {}}
    try:
        for key in files:
            warm, main, seq = lists[key]
            w = C.load("127.0.0.1", srv.port, [srv.tile_path(key, *t) for t in warm], 1, keep=True)
            cpu0 = sampler.cpu_seconds()
            r = C.load("127.0.0.1", srv.port, [srv.tile_path(key, *t) for t in main], CONCURRENCY)
            cpu = sampler.cpu_seconds() - cpu0
            s = C.load("127.0.0.1", srv.port, [srv.tile_path(key, *t) for t in seq], 1)
            out["files"][key] = {
                "tiles_per_s": r.tiles_per_s(), "p50_ms": r.pct(50), "p95_ms": r.pct(95),
                "seq_p50_ms": s.pct(50), "cpu_ms_per_tile": 1000 * cpu / max(r.ok, 1),
                "errors": (w.errors + r.errors + s.errors)[:3], "n_errors": len(w.errors + r.errors + s.errors),
                "ok": r.ok, "mean_bytes": r.bytes / max(r.ok, 1),
                "_warm_bodies": {"/".join(map(str, t)): w.bodies.get(srv.tile_path(key, *t)) for t in warm},
            }
    finally:
        sampler.stop()
        out["peak_rss_mib"] = sampler.peak_rss / 2**20
        out["stopped"] = srv.stop()
    return out


def run_floor(files, lists) -> dict:
    out = {}
    for key, f in files.items():
        warm, main, _ = lists[key]
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
            json.dump({"path": str(f["path"]), "vmin": f["vmin"], "vmax": f["vmax"], "warm": warm, "tiles": main}, fh)
        res = subprocess.run([sys.executable, str(C.HERE / "_floor.py"), fh.name], capture_output=True, text=True)
        os.unlink(fh.name)
        if res.returncode:
            raise RuntimeError(res.stderr)
        out[key] = {f"{d['encoder']}_{d['threads']}t": d["tiles_per_s"] for d in map(json.loads, res.stdout.split("\n")[:-1])}
    return out


def prewarm_page_cache(paths) -> None:
    for p in paths:
        with open(p, "rb") as fh:
            while fh.read(1 << 24):
                pass


def all_files(keys=("s2", "ndvi")) -> dict:
    """The benchmark's files and styles (also used by benchmarks/soak.py --load tiles)."""
    files = {
        "s2": {"path": C.s2_like_cog(), "vmin": 500, "vmax": 3500,
               "what": "10980x10980 uint16 COG (SRTM tiled onto a Sentinel-2 grid)"},
        "ndvi": {"path": C.NDVI_COG, "vmin": -0.1, "vmax": 0.9, "what": "bess_NDVI_maximum_cog.tif (float32)"},
    }
    return {k: files[k] for k in keys}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--tiles", type=int, default=500)
    ap.add_argument("--only", default="ours,titiler,terracotta,localtileserver,serve2")
    ap.add_argument("--files", default="s2,ndvi")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--ours-env", default="", metavar="K=V,K=V",
                    help="environment of our servers only (e.g. GDAL_CACHEMAX=512,VSI_CACHE=TRUE); peers keep theirs")
    args = ap.parse_args()
    for item in filter(None, args.ours_env.split(",")):
        k, _, v = item.partition("=")
        OURS_ENV[k.strip()] = v.strip()

    files = all_files(args.files.split(","))
    lists = {}
    for i, (key, f) in enumerate(files.items()):
        warm = C.choose_tiles(f["path"], N_WARM, args.seed + i)
        main_ = C.choose_tiles(f["path"], args.tiles, args.seed + 100 + i, exclude=set(warm))
        seq = C.choose_tiles(f["path"], N_SEQ, args.seed + 200 + i, exclude=set(warm) | set(main_))
        lists[key] = ([list(t) for t in warm], [list(t) for t in main_], [list(t) for t in seq])
    prewarm_page_cache([f["path"] for f in files.values()])
    names = args.only.split(",")
    info = C.machine()
    print(f"# machine: {info['cpus']} cores, {info['memory_gib']} GiB, load average at start {info['loadavg_at_start']}")

    rounds = []
    for r in range(args.rounds):
        order = names if r % 2 == 0 else names[::-1]
        res = {}
        for n in order:
            print(f"# round {r + 1}: {n} ...", file=sys.stderr, flush=True)
            res[n] = run_server(SERVERS[n], files, lists)
        print(f"# round {r + 1}: in-process floor ...", file=sys.stderr, flush=True)
        res["_floor"] = run_floor(files, lists)
        rounds.append(res)
    # best round of the floor too, per file and configuration
    floor = {key: {lab: max(rd["_floor"][key][lab] for rd in rounds) for lab in rounds[0]["_floor"][key]}
             for key in files}

    # best round per server and file (by tiles/s); latencies from the same round
    best = {n: {} for n in names}
    for n in names:
        for key in files:
            cands = [rd[n]["files"][key] | {"peak_rss_mib": rd[n]["peak_rss_mib"], "stopped": rd[n]["stopped"],
                                            "startup_s": rd[n]["startup_s"]} for rd in rounds]
            best[n][key] = max(cands, key=lambda d: d["tiles_per_s"])
            best[n][key]["all_rounds_tps"] = [round(c["tiles_per_s"], 1) for c in cands]

    # pixel check against ours, on the warm-up tiles of the first round
    pixels = {}
    if "ours" in names:
        for n in names:
            if n == "ours":
                continue
            for key in files:
                ref = {k: v for k, v in rounds[0]["ours"]["files"][key]["_warm_bodies"].items() if v}
                oth = {k: v for k, v in rounds[0][n]["files"][key]["_warm_bodies"].items() if v}
                pixels[f"{n}/{key}"] = compare(ref, oth, n in ("terracotta", "serve2", "serve2avg"))

    rows, ratios, verdicts, failed = [], {}, {}, {}
    for key, f in files.items():
        fl = floor[key]
        for n in names:
            b = best[n][key]
            rows.append([f"{key}: {SERVERS[n].name}", b["tiles_per_s"], b["p50_ms"], b["p95_ms"], b["seq_p50_ms"],
                         b["cpu_ms_per_tile"], b["peak_rss_mib"], b["n_errors"],
                         "/".join(f"{v:.0f}" for v in b["all_rounds_tps"])])
        for label in ("rio-tiler_1t", "rio-tiler_2t", "zlib1_1t", "zlib1_2t"):
            rows.append([f"{key}: floor {label}", fl[label], "", "", "", "", "", "", ""])
        if "ours" not in names:
            continue
        o = best["ours"][key]
        rk = {}
        for n in names:
            if n == "ours":
                continue
            if not best[n][key]["ok"]:  # the peer failed every tile of this file: no ratio
                failed[f"{n}/{key}"] = best[n][key]["errors"][:1]
                continue
            rk[f"tps_vs_{n}"] = o["tiles_per_s"] / best[n][key]["tiles_per_s"]
            rk[f"seq_p50_vs_{n}"] = o["seq_p50_ms"] / best[n][key]["seq_p50_ms"]
        floor2 = max(fl["rio-tiler_2t"], fl["zlib1_2t"])
        rk["tps_vs_floor_2threads"] = o["tiles_per_s"] / fl["rio-tiler_2t"]
        rk["tps_vs_best_floor_2threads"] = o["tiles_per_s"] / floor2
        ratios[key] = rk
        verdicts[key] = {t: C.verdict(rk[t], *TARGETS[t]) if t in rk else "N/A (peer failed)" for t in TARGETS
                         if t in rk or t.split("_vs_")[1] in names}
        if "titiler" in names:
            rk["peak_rss_vs_titiler"] = o["peak_rss_mib"] / best["titiler"][key]["peak_rss_mib"]
            verdicts[key]["peak_rss_vs_titiler"] = C.verdict(rk["peak_rss_vs_titiler"], RSS_TARGET, False)
        if "serve2" in names:
            s2 = best["serve2"][key]
            for t, target in SERVE2_TARGETS.items():
                peer = t.split("_vs_")[1]
                if peer in names and best[peer][key]["ok"]:
                    rk[f"serve2_{t}"] = s2["tiles_per_s"] / best[peer][key]["tiles_per_s"]
                    verdicts[key][f"serve2_{t}"] = C.verdict(rk[f"serve2_{t}"], target, True)
        if "serve2avg" in names:  # for information: Terracotta's default resampling, no target
            for peer in ("titiler", "localtileserver"):
                if peer in names and best[peer][key]["ok"]:
                    rk[f"serve2avg_tps_vs_{peer}"] = best["serve2avg"][key]["tiles_per_s"] / best[peer][key]["tiles_per_s"]

    print()
    print(C.fmt_table(["file: server", "tiles/s @16", "p50 ms", "p95 ms", "1-at-a-time p50 ms", "server CPU ms/tile",
                       "peak RSS MiB", "errors", "tiles/s per round"], rows))
    print()
    for key in ratios:
        print(f"{key}: " + ", ".join(f"{k}={v:.2f} {verdicts[key].get(k, '')}".rstrip() for k, v in ratios[key].items()))
    for k, v in pixels.items():
        ok = ("same pixels" if v["grey_agree"] >= 0.99 else
              "same up to the peer's own rounding (mean |diff| <= 1 level)" if v["mean_abs_diff"] <= 1.0 and v["alpha_agree"] >= 0.99
              else "DIFFERENT PIXELS")
        print(f"pixel check {k} vs ours: grey {100 * v['grey_agree']:.2f}% alpha {100 * v['alpha_agree']:.2f}% "
              f"mean |diff| {v['mean_abs_diff']:.2f} levels "
              f"of {v['tiles']} tiles -> {ok}")
    stops = {n: [rd[n]["stopped"] for rd in rounds] for n in names}
    print("stopped by process group, port free afterwards: "
          + ", ".join(f"{n}={all(s['group_gone'] and s['port_free'] for s in v)}" for n, v in stops.items()))
    for n in names:
        for key in files:
            best[n][key].pop("_warm_bodies", None)
    all_pass = all(v != "FAIL" for d in verdicts.values() for v in d.values())
    for k, v in failed.items():
        print(f"peer failed every tile of {k}: {v}")
    C.emit_json("tiles", {"machine": info, "ratios": ratios, "verdicts": verdicts, "pass": all_pass,
                          "pixel_check": pixels, "peer_failures": failed, "floor": floor, "best": best, "stops": stops,
                          "config": {"concurrency": CONCURRENCY, "tiles": args.tiles, "warm": N_WARM, "seq": N_SEQ,
                                     "rounds": args.rounds, "ours_env": OURS_ENV, "files": {k: str(f["path"]) for k, f in files.items()},
                                     "styles": {k: [f["vmin"], f["vmax"]] for k, f in files.items()}}})


if __name__ == "__main__":
    C.exit_on_sigterm()
    main()

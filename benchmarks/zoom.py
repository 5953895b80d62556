"""Zooming out: the centre tile of each raster from its native zoom down 10 levels,
leafmap_tiles vs titiler, localtileserver and terracotta, same files, same run.

    .venv/bin/python benchmarks/zoom.py [--only ours,titiler] [--files naip,srtm90] [--timeout 30] [--rounds 3]

For every raster in ../shared/data (naip, landsat_annual, cog/, misc/, large/) and a
numpy array source (the NAIP scene as a 4-band uint8 array, nodata 0; ours only, the
peers cannot serve arrays), each server answers the tile at the raster's centre at its
native zoom (after one warm-up request at native+1: the median of it and those of its 4
neighbours whose centre is inside the raster) and at every
zoom from native-1 down to native-10 (or 0), once each (no tile is asked twice, so no
server's tile cache answers), one request at a time.  A request still unanswered after ``--timeout``
seconds counts as that many seconds (a lower bound) and the server's further-out zooms
of that file are skipped (they only get slower).  Servers: ours = the session server
(``TileServer``, default style with the stretch it computed); ``ours-serve`` =
``leafmap-tiles serve`` on a key store of the same files (band 1, like terracotta);
titiler ``/cog/tiles`` with the same bands and rescale; localtileserver's
``TileClient``; terracotta ``serve`` (band 1; ``terracotta ingest`` cannot read a few
of the files, which are then left out for it).

Then the zoom-out storm: 16 far-out tiles (zooms 2-6 of the NAIP and Landsat scenes)
requested at once and abandoned 0.3 s later (connections closed, as a browser does
when the view moves), then the native centre tile of another layer (SRTM): its latency
against the same tile on the idle server (median of 5).

Targets (issue 11), printed as PASS/FAIL:
- ours: worst far-out tile / native tile <= 10 on every file;
- ours >= 20x faster than titiler on titiler's worst file (worst far-out tile);
- storm: native tile latency after the storm <= 3x idle, for ours.
Prints tables and a ``BENCH_JSON`` line.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

DEPTH = 10
TARGET_WORST_OVER_NATIVE = 10.0
TARGET_VS_TITILER = 20.0
TARGET_STORM = 3.0


# ------------------------------------------------------------------------ files
def rasters(only: set | None) -> dict[str, Path]:
    d = C.SHARED_DATA
    out = {}
    picks = [d / "naip" / "m_4709963_se_14_1_20200831.tif", d / "landsat_annual" / "1985.tif"]
    picks += sorted((d / "cog").glob("*.tif")) + sorted((d / "misc").glob("*.tif")) + sorted((d / "large").glob("*.tif"))
    for p in picks:
        key = p.stem
        if only and key not in only and "array" not in (only or ()):
            continue
        out[key] = p
    return out


def array_source(tmpdir: str) -> Path:
    """The NAIP scene as an array, written the way add_raster writes numpy sources."""
    import rasterio

    from leafmap_tiles.client.sources import prepare_source

    with rasterio.open(C.SHARED_DATA / "naip" / "m_4709963_se_14_1_20200831.tif") as ds:
        arr, crs, transform = ds.read(), ds.crs, ds.transform
    path, _ = prepare_source(arr, tmpdir, crs=crs, transform=transform, nodata=0)
    return Path(path)


def describe(path: Path) -> dict:
    """Centre (lon, lat), native zoom, band count, default indexes and stretch, from our
    engine (the same numbers every server is given)."""
    from leafmap_tiles.render import RenderEngine, parse_style

    e = RenderEngine()
    info = e.info(str(path))
    style = parse_style({}, info)
    w, s, east, n = info.bounds
    if w > east:  # crosses the antimeridian
        east += 360.0
    lon = (w + east) / 2
    lon = lon - 360.0 if lon > 180 else lon
    vmin, vmax = e.stretch(str(path), style) if not info.has_palette else ((0,), (255,))
    indexes = style.indexes or info.default_indexes()
    return {"lon": lon, "lat": (s + n) / 2, "native": int(info.maxzoom), "indexes": list(indexes),
            "bounds": [w, s, east, n],
            "vmin": [float(v) for v in vmin], "vmax": [float(v) for v in vmax], "palette": info.has_palette,
            "count": info.count}


def tile_at(lon, lat, z):
    import morecantile

    t = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, z)
    return t.z, t.x, t.y


# ------------------------------------------------------------------------ servers
class Server:
    name = ""
    proc = None

    def __init__(self, files: dict):
        self.files = files  # key -> {"path", "desc"}
        self.keys = list(files)

    def stop(self) -> None:
        if self.proc is not None:
            C.stop_group(self.proc)


class Ours(Server):
    name = "ours"

    def start(self):
        from leafmap_tiles.client import TileServer

        self.ts = TileServer().start()
        self.port = self.ts.port
        self.tpl = {}
        for key, f in self.files.items():
            reg = self.ts.register(str(f["path"]))
            u = urlsplit(self.ts.tile_url(reg["id"], reg["style"]))
            self.tpl[key] = u.path + ("?" + u.query if u.query else "")

    def path(self, key, z, x, y):
        return self.tpl[key].replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))

    def stop(self):
        self.ts.close()


class Titiler(Server):
    name = "titiler"

    def start(self):
        self.port = C.free_port()
        self.proc = subprocess.Popen(
            [C.peer_bin("uvicorn"), "titiler.application.main:app", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "warning", "--no-access-log"],
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        C.wait_http(f"http://127.0.0.1:{self.port}/healthz", proc=self.proc)

    def path(self, key, z, x, y):
        f = self.files[key]
        d = f["desc"]
        q = f"url={quote(str(f['path']))}"
        if not d["palette"]:
            q += "".join(f"&bidx={i}" for i in d["indexes"])
            q += "".join(f"&rescale={lo},{hi}" for lo, hi in zip(d["vmin"], d["vmax"]))
        return f"/cog/tiles/WebMercatorQuad/{z}/{x}/{y}.png?{q}"


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
        urls = json.loads(line)["urls"]
        self.tpl = {}
        for key, f in self.files.items():
            u = urlsplit(urls[str(f["path"])])
            d = f["desc"]
            q = u.query.replace("vmin=0", f"vmin={d['vmin'][0]}").replace("vmax=1", f"vmax={d['vmax'][0]}")
            if len(d["indexes"]) > 1:  # its own RGB default, no single-band stretch
                q = "&".join(p for p in q.split("&") if not p.startswith(("vmin=", "vmax=")))
            self.tpl[key] = u.path + "?" + q

    def path(self, key, z, x, y):
        return self.tpl[key].replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))


class _Band1Store(Server):
    """Band 1 of each file in a Terracotta database (key ``name``), ingested by the
    server's own tool one file at a time, so a file it cannot read is left out."""

    tag = ""

    def ingest_cmd(self) -> list[str]:
        raise NotImplementedError

    def db(self) -> Path:
        d = C.CACHE / f"zoom_{self.tag}"
        d.mkdir(parents=True, exist_ok=True)
        db = d / "zoom.sqlite"
        self.names = {key: "".join(ch for ch in key if ch.isalnum()) for key in self.files}
        if not db.exists():
            for key, name in self.names.items():
                sub = d / name
                sub.mkdir(exist_ok=True)
                link = sub / f"{name}.tif"
                if not link.exists():
                    link.symlink_to(self.files[key]["path"])
                r = subprocess.run([*self.ingest_cmd(), str(sub / "{name}.tif"), "-o", str(db)],
                                   capture_output=True, text=True)
                if r.returncode:
                    last = (r.stderr.strip().splitlines() or ["?"])[-1]
                    print(f"  {self.name}: cannot ingest {key} ({last[:120]}); left out")
        return db

    def serve_cmd(self, db: Path) -> list[str]:
        raise NotImplementedError

    def start(self):
        db = self.db()
        self.port = C.free_port()
        self.proc = subprocess.Popen([*self.serve_cmd(db), "--port", str(self.port)], start_new_session=True,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        C.wait_http(f"http://127.0.0.1:{self.port}/keys", proc=self.proc)
        body = json.loads(_get(self.port, "/datasets?limit=1000")[1])
        self.available = {d["name"] for d in body["datasets"]}

    def path(self, key, z, x, y):
        d = self.files[key]["desc"]
        return f"/singleband/{self.names[key]}/{z}/{x}/{y}.png?stretch_range=[{d['vmin'][0]},{d['vmax'][0]}]"


class Terracotta(_Band1Store):
    name, tag = "terracotta", "tc"

    def ingest_cmd(self):
        return [C.peer_bin("terracotta"), "ingest"]

    def serve_cmd(self, db):
        return [C.peer_bin("terracotta"), "serve", "-d", str(db)]


class OursServe(_Band1Store):
    name, tag = "ours-serve", "ours"

    def ingest_cmd(self):
        return [str(Path(sys.executable).with_name("leafmap-tiles")), "ingest"]

    def serve_cmd(self, db):
        return [str(Path(sys.executable).with_name("leafmap-tiles")), "serve", "-d", str(db)]


SERVERS = {"ours": Ours, "ours-serve": OursServe, "titiler": Titiler, "localtileserver": LocalTileServer,
           "terracotta": Terracotta}


# ------------------------------------------------------------------------ requests
def _get(port: int, path: str, timeout: float = 60.0) -> tuple[int, bytes]:
    import http.client

    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def tiles_with_data(desc, z: int, x: int, y: int) -> list[tuple[int, int, int]]:
    """The tile (z, x, y) and those of its 4 neighbours whose centre lies inside the
    raster's EPSG:4326 bounds (so a small raster's native time is not the time of empty
    tiles outside it)."""
    import morecantile

    tms = morecantile.tms.get("WebMercatorQuad")
    w, s, e, n = desc["bounds"]
    out = []
    for dx, dy in ((0, 0), (1, 0), (0, 1), (-1, 0), (0, -1)):
        b = tms.bounds(morecantile.Tile(x + dx, y + dy, z))
        lon, lat = (b.left + b.right) / 2, (b.bottom + b.top) / 2
        if (dx, dy) == (0, 0) or (w <= lon <= e or w <= lon + 360 <= e) and s <= lat <= n:
            out.append((z, x + dx, y + dy))
    return out


def timed(port: int, path: str, timeout: float) -> tuple[float, int]:
    t0 = time.perf_counter()
    try:
        status, _ = _get(port, path, timeout)
    except (socket.timeout, TimeoutError):
        return timeout, -1
    except OSError:
        return time.perf_counter() - t0, -2
    return time.perf_counter() - t0, status


def best_of(old: dict | None, new: dict) -> dict:
    """Two rounds of :func:`measure` on one file combined: each tile's best time (the
    native median too); a zoom that timed out in a round counts only where no other
    round answered it."""
    if old is None:
        return new
    out = {"native_s": min(old["native_s"], new["native_s"]), "native_status": new["native_status"], "far": {},
           "native_z": new.get("native_z")}
    for z in sorted(set(old["far"]) | set(new["far"]), reverse=True):
        cands = [r["far"][z] for r in (old, new) if z in r["far"]]
        answered = [c for c in cands if c["status"] != -1]
        out["far"][z] = min(answered or cands, key=lambda c: c["s"])
    timed_out = [z for z, v in out["far"].items() if v["status"] == -1]
    if timed_out:
        out["timed_out_at"] = max(timed_out)
    return _summarise(out)


def _summarise(out: dict) -> dict:
    far = [v["s"] for v in out["far"].values()]
    native = out.get("native_z")
    out["worst_s"] = max(far) if far else out["native_s"]
    out["worst_z"] = max(out["far"], key=lambda z: out["far"][z]["s"]) if far else native
    out["ratio"] = out["worst_s"] / out["native_s"] if out["native_s"] > 0 else float("nan")
    out["errors"] = [z for z, v in out["far"].items() if v["status"] not in (200,)]
    return out


def measure(srv, key, desc, timeout: float) -> dict:
    lon, lat, native = desc["lon"], desc["lat"], desc["native"]
    z0, x0, y0 = tile_at(lon, lat, native)
    # warm-up (opens the file) on a tile of the next zoom, so that the native tiles are
    # each asked once (a server's tile cache, e.g. terracotta's, never answers them)
    timed(srv.port, srv.path(key, *tile_at(lon, lat, z0 + 1)), timeout)
    # the centre tile and the neighbours that show data (up to 5 distinct tiles)
    nat = [timed(srv.port, srv.path(key, *t), timeout) for t in tiles_with_data(desc, z0, x0, y0)]
    out = {"native_s": statistics.median(t for t, _ in nat), "native_status": nat[0][1], "far": {}, "native_z": native}
    for z in range(native - 1, max(-1, native - DEPTH - 1), -1):
        # one request per zoom: each tile is asked once, so no cache answers it
        t, status = timed(srv.port, srv.path(key, *tile_at(lon, lat, z)), timeout)
        out["far"][z] = {"s": t, "status": status}
        if status == -1:
            out["timed_out_at"] = z
            break
    return _summarise(out)


def storm(srv, files, descs, timeout: float) -> dict | None:
    """16 far tiles requested and abandoned, then the native tile of another layer."""
    storm_keys = [k for k in ("m_4709963_se_14_1_20200831", "1985") if k in files]
    other = "srtm90" if "srtm90" in files else None
    if not storm_keys or other is None:
        return None
    d = descs[other]
    z0, x0, y0 = tile_at(d["lon"], d["lat"], d["native"])
    timed(srv.port, srv.path(other, z0, x0, y0), timeout)
    idle = statistics.median(timed(srv.port, srv.path(other, z0, x0 + dx, y0), timeout)[0] for dx in (1, 2, 3, 4, 5))
    native_path = srv.path(other, z0, x0 - 1, y0 + 1)  # not asked before
    socks = []
    for i in range(16):
        key = storm_keys[i % len(storm_keys)]
        dk = descs[key]
        z = 2 + (i // len(storm_keys)) % 5
        x, y = tile_at(dk["lon"], dk["lat"], z)[1:]
        p = srv.path(key, z, x + (i // 10), y)
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(f"GET {p} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        socks.append(s)
    time.sleep(0.3)
    for s in socks:
        s.close()
    after, status = timed(srv.port, native_path, max(timeout, 120))
    return {"idle_s": idle, "after_s": after, "ratio": after / idle if idle else float("nan"), "status": status}


# ------------------------------------------------------------------------ main
def main() -> None:
    C.exit_on_sigterm()
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="ours,ours-serve,titiler,localtileserver,terracotta")
    ap.add_argument("--files", default="", help="comma-separated file stems (default: all), 'array' for the array")
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--rounds", type=int, default=1,
                    help="measure each server N times (a fresh process each round) and keep each tile's "
                         "best time: other load on a shared machine only ever slows a round down")
    args = ap.parse_args()
    only_files = set(filter(None, args.files.split(","))) or None
    tmp = tempfile.mkdtemp(prefix="lt-zoom-")
    files = rasters(only_files)
    if not only_files or "array" in only_files:
        files["array (naip)"] = array_source(tmp)
    descs = {k: describe(p) for k, p in files.items()}
    results: dict[str, dict] = {}
    storms: dict[str, dict] = {}
    for name in args.only.split(","):
        cls = SERVERS[name]
        served = {k: {"path": p, "desc": descs[k]} for k, p in files.items() if not (k.startswith("array") and name != "ours")}
        results[name] = {}
        for rnd in range(max(1, args.rounds)):
            srv = cls(served)
            print(f"# {name}: starting" + (f" (round {rnd + 1} of {args.rounds})" if args.rounds > 1 else ""), flush=True)
            srv.start()
            try:
                for key in served:
                    if hasattr(srv, "available") and srv.names.get(key) not in srv.available:
                        continue
                    r = best_of(results[name].get(key), measure(srv, key, descs[key], args.timeout))
                    results[name][key] = r
                    print(f"  {key:32s} native z{descs[key]['native']:<2d} {r['native_s'] * 1000:7.0f} ms   worst z{r['worst_z']:<2d} "
                          f"{r['worst_s'] * 1000:8.0f} ms   x{r['ratio']:.1f}" + (" (timed out)" if "timed_out_at" in r else "")
                          + (f" errors at z{r['errors']}" if r["errors"] else ""), flush=True)
                st = storm(srv, served, descs, args.timeout)
                if st and (name not in storms or st["ratio"] < storms[name]["ratio"]):
                    storms[name] = st
                if st:
                    print(f"  storm: idle {st['idle_s'] * 1000:.0f} ms, after 16 abandoned far tiles {st['after_s'] * 1000:.0f} ms "
                          f"(x{st['ratio']:.1f})", flush=True)
            finally:
                srv.stop()

    # ---------------------------------------------------------------- verdicts
    rows, verdicts = [], []
    keys = list(files)
    for key in keys:
        row = [key, descs[key]["native"]]
        for name in results:
            r = results[name].get(key)
            row.append("-" if r is None else f"{r['native_s'] * 1000:.0f} / {r['worst_s'] * 1000:.0f}{'+' if 'timed_out_at' in r else ''} (x{r['ratio']:.1f})")
        rows.append(row)
    print()
    print("native tile ms / worst far-out tile ms (worst/native); + = timed out, a lower bound")
    print(C.fmt_table(["file", "native z"] + list(results), rows))
    if "ours" in results:
        bad = {k: r["ratio"] for k, r in results["ours"].items() if not r["ratio"] <= TARGET_WORST_OVER_NATIVE}
        verdicts.append(("ours worst/native <= 10 on every file", not bad, f"max x{max(r['ratio'] for r in results['ours'].values()):.1f}"
                         + (f"; failing: {bad}" if bad else "")))
        errs = {k: r["errors"] for k, r in results["ours"].items() if r["errors"]}
        verdicts.append(("ours: every far-out tile answered 200", not errs, str(errs) if errs else "all 200"))
    for peer in ("ours-serve",):
        if peer in results:
            bad = {k: r["ratio"] for k, r in results[peer].items() if not r["ratio"] <= TARGET_WORST_OVER_NATIVE}
            verdicts.append((f"{peer} worst/native <= 10 on every file", not bad,
                             f"max x{max(r['ratio'] for r in results[peer].values()):.1f}" + (f"; failing: {bad}" if bad else "")))
    if "ours" in results and "titiler" in results and results["titiler"]:
        tk = max(results["titiler"], key=lambda k: results["titiler"][k]["worst_s"])
        t_w, o_w = results["titiler"][tk]["worst_s"], results["ours"][tk]["worst_s"]
        verdicts.append((f"ours >= {TARGET_VS_TITILER:g}x faster than titiler on its worst file ({tk})",
                         t_w / o_w >= TARGET_VS_TITILER, f"titiler {t_w:.1f} s vs ours {o_w * 1000:.0f} ms: x{t_w / o_w:.0f}"))
    if "ours" in storms:
        st = storms["ours"]
        verdicts.append(("storm: ours native tile after 16 abandoned far tiles <= 3x idle",
                         st["ratio"] <= TARGET_STORM, f"x{st['ratio']:.2f} ({st['idle_s'] * 1000:.0f} -> {st['after_s'] * 1000:.0f} ms)"))
    for peer, st in storms.items():
        if peer != "ours":
            print(f"storm, {peer}: idle {st['idle_s'] * 1000:.0f} ms -> {st['after_s'] * 1000:.0f} ms (x{st['ratio']:.1f})")
    print()
    for label, ok, detail in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {label}: {detail}")
    C.emit_json("zoom", {"machine": C.machine(), "results": results, "storms": storms,
                         "verdicts": [{"label": v[0], "pass": v[1], "detail": v[2]} for v in verdicts]})


if __name__ == "__main__":
    main()

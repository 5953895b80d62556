"""A stand-in for a Jupyter kernel, for busy_kernel.py.  Runs in the product's own
virtualenv: ``python _kernel.py ours|localtileserver SPEC.json``.

It shows the raster the way a user would (ours: ``TileServer`` + ``register``, a child
process; localtileserver: ``TileClient``, a server thread inside this process), then a
"browser" (a separate process: ``python _kernel.py browser PORT PATHS.json``) fetches
tiles one at a time, alternately while this process is idle and while one of its
threads runs a pure-Python loop (a busy notebook cell).  Prints one JSON line.
"""

import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))


def browser(port: int, paths_file: str) -> None:
    import _common as C

    paths = json.loads(Path(paths_file).read_text())
    r = C.load("127.0.0.1", port, paths, 1)
    print(json.dumps({"latencies": r.latencies, "errors": r.errors[:3]}), flush=True)


def fetch(port: int, paths: list[str]) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(paths, fh)
    p = subprocess.run([sys.executable, __file__, "browser", str(port), fh.name], capture_output=True, text=True)
    Path(fh.name).unlink()
    if p.returncode:
        raise RuntimeError(p.stderr)
    return json.loads(p.stdout.strip().splitlines()[-1])


def busy_loop(stop: threading.Event, counter: list) -> None:
    n = 0
    while not stop.is_set():
        s = 0
        for i in range(10000):  # pure Python: holds the GIL except at switch intervals
            s += i * i
        n += 1
    counter.append(n)


def main() -> None:
    kind, spec = sys.argv[1], json.loads(Path(sys.argv[2]).read_text())
    path, lo, hi = spec["path"], spec["vmin"], spec["vmax"]
    if kind == "ours":
        from leafmap_tiles.client import TileServer

        ts = TileServer().start()
        reg = ts.register(path, {"vmin": lo, "vmax": hi})
        template, port = ts.tile_url(reg["id"], reg["style"]), ts.port
        close = ts.close
    else:
        from localtileserver import TileClient

        tc = TileClient(path, host="127.0.0.1")
        template, port = tc.get_tile_url(vmin=lo, vmax=hi), tc.server_port
        close = tc.shutdown
    u = urlsplit(template)
    tmpl = u.path + ("?" + u.query if u.query else "")

    def paths(tiles):
        return [tmpl.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y)) for z, x, y in tiles]

    out = {"kind": kind, "idle": [], "busy": [], "errors": [], "loops": []}
    fetch(port, paths(spec["warm"]))
    for i, tiles in enumerate(spec["sets"]):
        mode = "idle" if i % 2 == 0 else "busy"
        stop, counter = threading.Event(), []
        t = None
        if mode == "busy":
            t = threading.Thread(target=busy_loop, args=(stop, counter), daemon=True)
            t.start()
            time.sleep(0.2)
        r = fetch(port, paths(tiles))
        if t is not None:
            stop.set()
            t.join()
            out["loops"].append(counter[0])
        out[mode] += r["latencies"]
        out["errors"] += r["errors"]
    close()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "browser":
        browser(int(sys.argv[2]), sys.argv[3])
    else:
        main()

"""Tile latency while the kernel is busy: ours vs localtileserver.

    .venv/bin/python benchmarks/busy_kernel.py [--tiles 40] [--sets 4]

For each product a kernel stand-in process (``_kernel.py``, in that product's
virtualenv) shows the 10980x10980 uint16 COG; a separate "browser" process fetches
distinct tiles one at a time, alternately while the kernel is idle and while one of
its threads runs a pure-Python loop.  Reports p50 busy / p50 idle per product.
Target: ours <= 1.3.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiles", type=int, default=40, help="tiles per set")
    ap.add_argument("--sets", type=int, default=4, help="alternating idle/busy sets (even)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    path = C.s2_like_cog()
    warm = C.choose_tiles(path, 10, args.seed)
    used = set(warm)
    sets = []
    for i in range(args.sets):
        s = C.choose_tiles(path, args.tiles, args.seed + 1 + i, exclude=used)
        used |= set(s)
        sets.append(s)
    spec = {"path": str(path), "vmin": 500, "vmax": 3500, "warm": warm, "sets": sets}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(spec, fh)
    info = C.machine()
    print(f"# machine: {info['cpus']} cores, {info['memory_gib']} GiB, load average {info['loadavg_at_start']}")
    pythons = {"ours": sys.executable, "localtileserver": C.peer_bin("python")}
    res = {}
    for kind in ("ours", "localtileserver"):
        p = subprocess.run([pythons[kind], str(C.HERE / "_kernel.py"), kind, fh.name], capture_output=True, text=True,
                           timeout=1200)
        if p.returncode:
            raise RuntimeError(f"{kind}: {p.stderr[-2000:]}")
        res[kind] = json.loads(p.stdout.strip().splitlines()[-1])
    Path(fh.name).unlink()
    rows, ratios = [], {}
    for kind, d in res.items():
        idle, busy = np.percentile(d["idle"], 50) * 1000, np.percentile(d["busy"], 50) * 1000
        ratios[kind] = busy / idle
        rows.append([kind, idle, busy, ratios[kind], np.percentile(d["idle"], 95) * 1000,
                     np.percentile(d["busy"], 95) * 1000, len(d["errors"])])
    print(C.fmt_table(["product", "idle p50 ms", "busy p50 ms", "busy/idle p50", "idle p95 ms", "busy p95 ms", "errors"],
                      rows))
    v = C.verdict(ratios["ours"], 1.3, False)
    print(f"ours busy/idle = {ratios['ours']:.2f} (target <= 1.3) {v}; localtileserver {ratios['localtileserver']:.2f}")
    C.emit_json("busy_kernel", {"machine": info, "ratios": {"busy_over_idle_p50": ratios},
                                "verdicts": {"ours_busy_over_idle_p50": v}, "pass": v == "PASS",
                                "p50_ms": {k: {"idle": r[1], "busy": r[2]} for k, r in zip(res, rows)}})


if __name__ == "__main__":
    C.exit_on_sigterm()
    main()

"""Execute a notebook headless (nbclient) and print what its cells reported.

Usage: python scripts/run_notebook.py NOTEBOOK [--out DIR]

The notebook's tiles are saved by the notebook itself when the environment variable
LEAFMAP_TILES_DEMO_OUT names a folder; this script sets it from --out.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import nbformat
from nbclient import NotebookClient


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("notebook")
    ap.add_argument("--out", default=None)
    ap.add_argument("--timeout", type=int, default=600)
    args = ap.parse_args()
    nb = nbformat.read(args.notebook, as_version=4)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        os.environ["LEAFMAP_TILES_DEMO_OUT"] = os.path.abspath(args.out)
    t0 = time.monotonic()
    client = NotebookClient(nb, timeout=args.timeout, kernel_name="python3",
                            resources={"metadata": {"path": os.path.dirname(os.path.abspath(args.notebook))}})
    client.execute()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                sys.stdout.write(out.get("text", ""))
    print(f"executed {args.notebook} in {time.monotonic() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""In-process floor for tiles.py: rio-tiler ``Reader.tile`` + rescale + PNG encode in
N threads (one Reader per thread), no HTTP.  Run with the project's virtualenv:
``python _floor.py SPEC.json``; prints one JSON line per (encoder, threads).

Encoders: ``rio-tiler`` (``ImageData.render``, GDAL's PNG driver: what titiler and
localtileserver do) and ``zlib1`` (leafmap_tiles' own PNG writer).  Both produce a grey +
alpha PNG of the same pixels.
"""

import json
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def main() -> None:
    spec = json.loads(open(sys.argv[1]).read())
    from leafmap_tiles.server import gdalenv

    gdalenv.set_defaults()  # same GDAL settings as the tile server process
    from rio_tiler.io import Reader

    from leafmap_tiles.render import encode

    path, lo, hi = spec["path"], spec["vmin"], spec["vmax"]
    warm, tiles = spec["warm"], spec["tiles"]

    def run(encoder: str, threads: int) -> dict:
        local = threading.local()

        def one(t):
            z, x, y = t
            rdr = getattr(local, "rdr", None)
            if rdr is None:
                rdr = local.rdr = Reader(path)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                img = rdr.tile(x, y, z, tilesize=256, resampling_method="nearest", reproject_method="nearest")
                if encoder == "rio-tiler":
                    img.rescale(in_range=((lo, hi),))
                    return len(img.render(img_format="PNG"))
                data = img.array.data[0]
                valid = ~np.ma.getmaskarray(img.array)[0]
                if np.issubdtype(data.dtype, np.floating):
                    valid &= ~np.isnan(data)
                im = (np.clip(data, lo, hi, dtype=np.float64) - lo) / (hi - lo) * 255.0
                grey = np.where(valid, im, 0).astype(np.uint8)
                return len(encode.png_grey_alpha(grey, valid.astype(np.uint8) * 255))

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, warm))
            t0 = time.perf_counter()
            list(pool.map(one, tiles))
            wall = time.perf_counter() - t0
        return {"encoder": encoder, "threads": threads, "tiles_per_s": len(tiles) / wall}

    for encoder in ("rio-tiler", "zlib1"):
        for threads in (1, 2):
            print(json.dumps(run(encoder, threads)), flush=True)


if __name__ == "__main__":
    main()

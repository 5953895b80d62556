"""notebooks/03_leafmap_style.ipynb runs headless on the bundled NAIP windows."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import numpy as np
import rasterio
from nbclient import NotebookClient

NB = Path(__file__).resolve().parents[2] / "notebooks" / "03_leafmap_style.ipynb"
NAIP = Path(__file__).resolve().parents[1] / "data" / "naip" / "m_4709963_se_14_1_20200831.tif"


def test_notebook_03_runs(tmp_path):
    nb = nbformat.read(NB, as_version=4)
    # run in a copy of the notebooks folder (it writes its band files next to itself)
    (tmp_path / "notebooks").mkdir()
    shutil.copytree(NAIP.parent, tmp_path / "tests" / "data" / "naip")
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path / "notebooks")}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    # NDVI at the field from 5 m red and the 10 m NIR (2x2 mean, DN*0.025-25), by hand with rasterio
    with rasterio.open(NAIP) as ds:
        from rasterio.warp import transform

        xs, ys = transform("EPSG:4326", ds.crs, [-99.1535], [47.0215])
        r, c = ds.index(xs[0], ys[0])
        red = float(ds.read(1)[r, c])
        nir = ds.read(4).astype("float64").reshape(128, 2, 128, 2).mean(axis=(1, 3))[r // 2, c // 2]
    dn = np.round((nir + 25) / 0.025)
    want = (dn * 0.025 - 25 - red) / (dn * 0.025 - 25 + red)
    assert f"NDVI at the field: {round(want, 3)}" in text
    assert "'colormap': 'viridis'" in text and "colorbar ticks: ['0', '0.16', '0.32', '0.48', '0.64', '0.8']" in text
    assert "legend: ['vegetation', 'water']" in text and "closed" in text

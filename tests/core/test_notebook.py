"""notebooks/01_add_raster.ipynb runs headless on the bundled files."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NB = Path(__file__).resolve().parents[2] / "notebooks" / "01_add_raster.ipynb"


def test_notebook_01_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("LEAFMAP_TILES_DEMO_OUT", str(tmp_path))
    nb = nbformat.read(NB, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NB.parent)}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert text.count("bytes PNG") == 4
    # the live map is the last output (no m.close(): after "Run All" the user sees the map)
    assert not any(line.strip().startswith("m.close()") for c in nb.cells if c.cell_type == "code"
                   for line in c.source.splitlines())
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in last.outputs)
    saved = sorted(os.listdir(tmp_path))
    assert len(saved) == 4 and all(name.endswith(".png") for name in saved)

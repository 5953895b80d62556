"""notebooks/04_key_store.ipynb runs headless: ingest the NAIP dates into a Terracotta
SQLite key store, show one dataset and a time slider over the dates."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tests.map.helpers import naip_files

NB = Path(__file__).resolve().parents[2] / "notebooks" / "04_key_store.ipynb"


def test_notebook_04_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("DEMO_STORE_DIR", str(tmp_path))
    nb = nbformat.read(NB, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NB.parent)}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    dates = [Path(f).stem.rsplit("_", 1)[1] for f in naip_files()]
    assert "keys: ['date'] | datasets: 10" in text
    assert f"10 dates: {dates!r}" in text
    assert (tmp_path / "naip.sqlite").exists()
    # the Terracotta database itself, read with terracotta's own driver
    import terracotta

    driver = terracotta.get_driver(str(tmp_path / "naip.sqlite"))
    assert sorted(k[0] for k in driver.get_datasets()) == dates
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in last.outputs)

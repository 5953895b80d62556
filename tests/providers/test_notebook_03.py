"""notebooks/03_provider_search.ipynb runs headless against the real local STAC API
server (stac-fastapi-static) and the nginx asset server behind HTTP Basic auth."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from terrascope_catalog import CATALOG, OFFSET, PASSWORD, SCALE, USERNAME

NB = Path(__file__).resolve().parents[2] / "notebooks" / "03_provider_search.ipynb"


def test_notebook_03_runs_against_the_local_stac_api(stac_api, asset_server, clean_env, monkeypatch):
    # the kernel inherits these (monkeypatch restores them)
    monkeypatch.setenv("LEAFMAP_TILES_TERRASCOPE_STAC_URL", stac_api.url)
    monkeypatch.setenv("LEAFMAP_TILES_TERRASCOPE_HOSTS", asset_server.netloc)
    monkeypatch.setenv("TERRASCOPE_USERNAME", USERNAME)
    monkeypatch.setenv("TERRASCOPE_PASSWORD", PASSWORD)
    nb = nbformat.read(NB, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NB.parent)}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    dates = sorted({s.date for s in CATALOG})
    assert f"STAC API: {stac_api.url.rstrip('/')}" in text
    assert f"{len(dates)} items:" in text  # search_ndvi keeps one item per date by default (as leafmap's)
    assert f"{len(dates)} dates: {dates!r}" in text
    # the colorbar is in NDVI units: DN 0..250 of the items' default stretch times scale, plus offset
    lo, hi = 0 * SCALE + OFFSET, 250 * SCALE + OFFSET
    ticks = next(line for line in text.splitlines() if line.startswith("colorbar ticks:"))
    values = [float(t.strip("' ")) for t in ticks.split("[", 1)[1].rstrip("]").split(",")]
    assert abs(values[0] - lo) < 1e-9 and abs(values[-1] - hi) < 1e-9
    series = [line for line in text.splitlines() if line[:10] in dates]
    assert [line.split()[0] for line in series] == dates
    # the field's NDVI varies over the dates (the values are checked against rasterio in test_time_layers)
    assert len({line.split()[1] for line in series}) > 3
    # a live map at the end, no m.close()
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in last.outputs)

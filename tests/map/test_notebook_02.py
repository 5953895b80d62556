"""notebooks/02_ndvi_time_slider.ipynb runs headless on the bundled NAIP windows."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NB = Path(__file__).resolve().parents[2] / "notebooks" / "02_ndvi_time_slider.ipynb"


def test_notebook_02_runs():
    nb = nbformat.read(NB, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NB.parent)}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "10 files" in text
    assert "10 frames: ['2009-08-18', '2010-06-29'," in text
    assert "colorbar ticks: ['-0.2', '-0.04', '0.12', '0.28', '0.44', '0.6']" in text
    assert "showing 2020-08-31" in text and "showing 2009-08-18 | layers drawn: ['2009-08-18']" in text
    # the field's NDVI, as rasterio reads it (tests/map/test_values_at.py checks the arithmetic)
    for line in ["2009-08-18 0.398", "2012-07-31 0.503", "2014-07-20 -0.075", "2020-08-31 0.597"]:
        assert line in text
    assert "series panel on the map: True" in text
    # the drawn field's series (tests/map/test_area_series.py checks it against rasterio;
    # here the 2009 and 2020 means and medians once more, from rasterio + numpy)
    assert "area series in the panel: True | CSV button: True" in text
    import shapely.geometry as sg

    from tests.core.test_area_statistics import reference
    from tests.map.helpers import NDVI, naip_files

    field = sg.Polygon([(-99.1631, 47.0192), (-99.1618, 47.0192), (-99.1618, 47.0202), (-99.1631, 47.0202)])
    for f, date in ((naip_files()[0], "2009-08-18"), (naip_files()[-1], "2020-08-31")):
        ref, _ = reference(f, field, NDVI)
        assert f"{date}  {ref['mean']:.3f}   {ref['median']:.3f}" in text, date
    assert "2009-08-18  0.366   0.388  0.310  0.402    440" in text
    assert "date,label,mean,median,p10,p90,count" in text
    # it ends playing, with the live map on screen (no m.close(): after "Run All" the user sees the map)
    assert "playing: True" in text
    assert not any(line.strip().startswith("m.close()") for c in nb.cells if c.cell_type == "code"
                   for line in c.source.splitlines())
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 2  # the matplotlib plots of the pixel's and the field's series
    widgets = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
               if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    models = [state[o["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]]["model_name"] for o in widgets]
    # the map, after the slider is added and again at the end; and (a kernel without a
    # jupyter-server: the comm route, leafmap_tiles.client.urls) views of jupyter-loopback's
    # comm bridge, an anywidget that shows nothing
    assert models.count("LeafletMapModel") == 2, models
    assert set(models) <= {"LeafletMapModel", "AnyModel"}, models

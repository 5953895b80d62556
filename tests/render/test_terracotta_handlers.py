"""The Terracotta tile handlers alone (plain functions, no HTTP), and the OpenAPI
spec built from the routes' parameter classes.

References: the PNG our HTTP route sends for the same request (the routes only parse
and call the handler), rasterio's read of the dataset for the preview's values."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from leafmap_tiles.errors import BadRequestError, UnreadableDataset
from leafmap_tiles.render import RenderEngine
from leafmap_tiles.render import terracotta as tcr
from leafmap_tiles.render import terracotta_handlers as tiles
from leafmap_tiles.server import terracotta_params as tp
from leafmap_tiles.store.metadata import compute_metadata
from tests.conftest import data
from tests.core.helpers import decode

PATH = data("co_elevation_window.tif")


@pytest.fixture(scope="module")
def md():
    return compute_metadata(PATH)


def test_preview_is_the_stretched_band(md):
    engine = RenderEngine()
    q = tp.SinglebandQuery.parse({"stretch_range": "[null, null]", "tile_size": "[64, 64]"})
    png = tiles.singleband(engine, lambda keys: (PATH, md), ["dem"], None, stretch_range=q.stretch_range,
                           colormap=q.colormap, explicit_color_map=None, tile_size=q.tile_size)
    got = decode(png)
    assert got.shape == (64, 64, 4)
    with rasterio.open(PATH) as ds:
        band = ds.read(1, masked=True)
        assert tuple(md["range"]) == (float(band.min()), float(band.max()))
        small = ds.read(1, out_shape=(64, 64), resampling=rasterio.enums.Resampling.average, masked=True)
    # greys (r == g == b) that follow the values: Terracotta's 1..255 stretch of the range
    opaque = got[..., 3] > 0
    assert opaque.sum() > 0.9 * 64 * 64
    assert np.array_equal(got[opaque][:, 0], got[opaque][:, 1])
    both = opaque & ~np.ma.getmaskarray(small)
    r = np.corrcoef(got[..., 0][both].astype(float), np.asarray(small)[both].astype(float))[0, 1]
    assert r > 0.99, r
    assert 1 <= got[opaque][:, 0].min() and got[opaque][:, 0].max() <= 255


def test_tile_outside_the_dataset_is_transparent(md):
    png = tiles.singleband(RenderEngine(), lambda keys: (PATH, md), ["dem"], (5, 0, 0), stretch_range=None,
                           colormap=None, explicit_color_map=None, tile_size=(256, 256))
    assert png == tcr.empty_png((256, 256))


def test_unreadable_file_names_the_dataset_not_the_file(md, tmp_path):
    broken = tmp_path / "broken.tif"
    broken.write_bytes(open(PATH, "rb").read()[:4000])
    with pytest.raises(UnreadableDataset, match="dataset a/b") as info:
        tiles.singleband(RenderEngine(), lambda keys: (str(broken), md), ["a", "b"], None, stretch_range=None,
                         colormap=None, explicit_color_map=None, tile_size=(32, 32))
    assert str(tmp_path) not in str(info.value)


def test_parameter_classes_validate_as_terracotta_documents():
    with pytest.raises(BadRequestError, match="tile_size"):
        tp.SinglebandQuery.parse({"tile_size": "[0, 256]"})
    with pytest.raises(BadRequestError, match="explicit_color_map"):
        tp.SinglebandQuery.parse({"colormap": "explicit"})
    q = tp.SinglebandQuery.parse({"colormap": "explicit", "explicit_color_map": '{"1": "#ff0000"}'})
    assert q.colormap is None and q.explicit_color_map == [(1.0, (255, 0, 0, 255))]
    with pytest.raises(BadRequestError, match="r, g: Missing"):
        tp.RgbQuery.parse({"b": "B3"})
    c = tp.ComputeQuery.parse({"expression": "(v1-v2)/(v1+v2)", "stretch_range": "[-1, 1]", "v1": "b4", "v2": "b3"})
    assert c.operands == {"v1": "b4", "v2": "b3"} and c.stretch_range == (-1.0, 1.0)
    d = tp.DatasetsQuery.parse({"limit": "5", "year": "[1990,2000]", "order_by": "year,band"})
    assert (d.limit, d.page, d.where, d.order_by) == (5, 0, {"year": ["1990", "2000"]}, ["year", "band"])


def test_openapi_parameters_are_the_classes_fields():
    from leafmap_tiles.server.terracotta_spec import openapi

    names = ["viridis", "greys"]
    spec = openapi(names)
    single = spec["paths"]["/singleband/{keys}/{tile_z}/{tile_x}/{tile_y}.png"]["get"]["parameters"]
    query = [p for p in single if p["in"] == "query"]
    assert [p["name"] for p in query] == ["stretch_range", "colormap", "explicit_color_map", "tile_size"]
    assert query[1]["schema"]["enum"] == ["explicit", *names]
    compute = spec["paths"]["/compute/{keys}/preview.png"]["get"]["parameters"]
    assert {p["name"] for p in compute if p["required"]} == {"keys", "expression", "stretch_range"}
    assert [p["name"] for p in spec["paths"]["/colormap"]["get"]["parameters"]] == \
        ["stretch_range", "colormap", "num_values"]

"""leafmap_tiles.render alone, in this process (no server, no HTTP): the engine's
description of a file, its tiles, points and errors.

References: rasterio's own reads of the same files, rio-tiler's tile of the same
address, matplotlib's colormap applied to the values rio-tiler reads."""

from __future__ import annotations

import morecantile
import numpy as np
import pytest
import rasterio
from rasterio.warp import transform_bounds

from leafmap_tiles.errors import InvalidSourceError, SourceNotFoundError, StyleError
from leafmap_tiles.render import RenderEngine, parse_style
from tests.conftest import data
from tests.core.helpers import decode, matplotlib_colours

TMS = morecantile.tms.get("WebMercatorQuad")


@pytest.fixture(scope="module")
def engine():
    return RenderEngine()


def centre_tile(path: str, zoom: int) -> morecantile.Tile:
    with rasterio.open(path) as ds:
        w, s, e, n = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
    return TMS.tile((w + e) / 2, (s + n) / 2, zoom)


def test_info_is_what_rasterio_reads(engine):
    path = data("cog.tif")
    info = engine.info(path)
    with rasterio.open(path) as ds:
        assert (info.width, info.height, info.count, info.dtype) == (ds.width, ds.height, ds.count, ds.dtypes[0])
        assert info.nodata == ds.nodata
        want = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21)
        assert info.overviews == ds.overviews(1)
    assert np.allclose(info.bounds, want, atol=1e-6)
    assert info.default_indexes() == (1,)
    assert engine.info(path) is info  # described once, then cached


def test_single_band_tile_is_matplotlibs_colours_of_rio_tilers_values(engine):
    from rio_tiler.io import Reader

    path = data("cog.tif")
    info = engine.info(path)
    t = centre_tile(path, max(info.minzoom, info.maxzoom - 1))
    style = parse_style({"colormap": "viridis", "vmin": 20, "vmax": 200, "resampling": "nearest"}, info)
    got = decode(engine.tile(path, style, t.z, t.x, t.y))
    with Reader(path) as r:
        img = r.tile(t.x, t.y, t.z, tilesize=got.shape[0], indexes=(1,),
                     resampling_method="nearest", reproject_method="nearest")
    ref = matplotlib_colours(img.array, "viridis", 20, 200)
    assert (got[..., 3] > 0).sum() > 1000
    assert np.array_equal(got[..., 3] > 0, ref[..., 3] > 0)
    assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1


def test_point_is_rasterios_sample(engine):
    path = data("cog.tif")
    info = engine.info(path)
    with rasterio.open(path) as ds:
        row, col = ds.height // 3, ds.width // 2
        x, y = ds.xy(row, col)
        want = int(ds.read(1, window=((row, row + 1), (col, col + 1)))[0, 0])
        (lon,), (lat,) = rasterio.warp.transform(ds.crs, "EPSG:4326", [x], [y])
    out = engine.point(path, parse_style({}, info), lon, lat)
    assert out["inside"] is True and out["values"] == [want]
    far = engine.point(path, parse_style({}, info), lon + 90, 0.0)
    assert far["inside"] is False and far["values"] == [None]


def test_style_errors_name_the_parameter(engine):
    info = engine.info(data("cog.tif"))
    with pytest.raises(StyleError, match="indexes"):
        parse_style({"indexes": "5"}, info)  # a one-band file
    with pytest.raises(StyleError, match="colormap"):
        parse_style({"colormap": "no_such_colormap"}, info)


def test_missing_and_non_raster_files(engine, tmp_path):
    with pytest.raises(SourceNotFoundError):
        engine.info(str(tmp_path / "missing.tif"))
    text = tmp_path / "notes.tif"
    text.write_text("not a raster")
    with pytest.raises(InvalidSourceError, match="not a raster format"):
        engine.info(str(text))


def test_source_info_has_the_fields_of_the_protocol():
    """SourceInfo (the engine's value: tuples, NaN) and protocol.SourceInfoJSON (its
    JSON: lists, "nan") name the same fields; to_json is the one conversion."""
    from dataclasses import fields
    from typing import get_type_hints

    from leafmap_tiles.protocol import SourceInfoJSON
    from leafmap_tiles.render.engine import SourceInfo

    # SourceInfoJSON = SourceDescription (the fields /info shares) + path, statistics
    assert {f.name for f in fields(SourceInfo)} == set(get_type_hints(SourceInfoJSON))

"""Our metadata equals Terracotta's on real files, in memory and in chunks."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from shapely.geometry import shape

from leafmap_tiles.errors import InvalidSourceError, SourceNotFoundError
from leafmap_tiles.store import metadata as md

tc_raster = pytest.importorskip("terracotta.raster")

REAL_FILES = [
    "cog.tif",  # uint16, no nodata: every pixel valid
    "cog_int16.tif",  # int16, nodata -32768
    "cog_nodata_nan.tif",  # float32, NaN and nodata 0
    "cog_rgba.tif",  # uint8, alpha band
    "nlcd.tif",  # uint8 palette, nodata 255, striped
    "rmnp-dem.tif",  # uint16 nodata 65535, EPSG:4326
    "cog_dateline.tif",  # crosses the antimeridian
    "landsat_annual/1985.tif",
]


def terracotta_metadata(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tc_raster.compute_metadata(
            str(path),
            large_raster_threshold=10980 * 10980,
            rio_env_options=dict(GDAL_TIFF_INTERNAL_MASK=True, GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"),
        )


def assert_same_metadata(ours, theirs, *, hull_exact=True):
    for key in ("valid_percentage", "mean", "stdev"):
        assert ours[key] == pytest.approx(theirs[key], rel=1e-6), key
    assert ours["range"] == pytest.approx(tuple(theirs["range"]), rel=1e-7)
    assert ours["bounds"] == pytest.approx(tuple(theirs["bounds"]), rel=1e-12)
    # percentiles are stored as float32: compare at that precision
    np.testing.assert_allclose(
        np.asarray(ours["percentiles"], "f4"), np.asarray(theirs["percentiles"], "f4"), rtol=1e-6
    )
    if hull_exact:
        assert json.dumps(ours["convex_hull"]) == json.dumps(dict(theirs["convex_hull"]))
    else:
        a, b = shape(ours["convex_hull"]), shape(theirs["convex_hull"])
        assert a.symmetric_difference(b).area <= 1e-9 * a.area


@pytest.mark.parametrize("name", REAL_FILES)
def test_metadata_equals_terracotta(data, name):
    theirs = terracotta_metadata(data / name)
    ours = md.compute_metadata(data / name)
    assert_same_metadata(ours, theirs)
    assert ours["metadata"] == {}
    assert len(ours["percentiles"]) == 99


@pytest.mark.parametrize("name", REAL_FILES)
def test_chunked_equals_terracotta(data, name, monkeypatch):
    # small strips so that every file is read in several chunks
    monkeypatch.setattr(md, "CHUNK_PIXELS", 50_000)
    theirs = terracotta_metadata(data / name)
    ours = md.compute_metadata(data / name, use_chunks=True)
    assert_same_metadata(ours, theirs)


def test_known_values_landsat_1985(data):
    """Values checked by hand against `terracotta ingest` on the same file."""
    m = md.compute_metadata(data / "landsat_annual" / "1985.tif", extra_metadata={"sensor": "TM"})
    assert m["range"] == (1.0, 255.0)
    assert m["mean"] == pytest.approx(86.1701099988581, rel=1e-12)
    assert m["stdev"] == pytest.approx(29.3965527031304, rel=1e-12)
    assert m["valid_percentage"] == pytest.approx(99.9851580665908, rel=1e-12)
    assert m["bounds"] == pytest.approx((-74.7224941537607, -8.5869059693701, -74.1589809760325, -8.28210759346834))
    assert m["percentiles"][:2] == [3.0, 3.0]
    assert m["metadata"] == {"sensor": "TM"}


def test_float_percentiles_exact_and_approximate(data, monkeypatch):
    path = data / "cog_nodata_nan.tif"
    exact = md.compute_metadata(path)
    monkeypatch.setattr(md, "CHUNK_PIXELS", 100_000)
    monkeypatch.setattr(md, "HISTOGRAM_BINS", 4096)
    three_pass = md.compute_metadata(path, use_chunks=True)
    np.testing.assert_allclose(three_pass["percentiles"], exact["percentiles"], rtol=1e-6)
    # refinement disabled: approximate, within one histogram bin
    monkeypatch.setattr(md, "REFINE_MAX_VALUES", 0)
    approx = md.compute_metadata(path, use_chunks=True)
    width = (exact["range"][1] - exact["range"][0]) / 4096
    assert np.max(np.abs(np.subtract(approx["percentiles"], exact["percentiles"]))) <= width


def test_max_shape_downsamples(data):
    m = md.compute_metadata(data / "cog.tif", max_shape=(100, 100))
    full = md.compute_metadata(data / "cog.tif")
    assert m["bounds"] == full["bounds"]
    assert m["mean"] == pytest.approx(full["mean"], rel=0.05)
    with pytest.raises(ValueError):
        md.compute_metadata(data / "cog.tif", max_shape=(100, 100), use_chunks=True)
    with pytest.raises(ValueError):
        md.compute_metadata(data / "cog.tif", max_shape=(100,))


def test_unreadable_inputs(data, tmp_path):
    with pytest.raises(SourceNotFoundError):
        md.compute_metadata(tmp_path / "missing.tif")
    with pytest.raises(InvalidSourceError, match="GCP"):
        md.compute_metadata(data / "cog_gcps.tif")
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"not a tiff")
    with pytest.raises(InvalidSourceError):
        md.compute_metadata(junk)

"""Key store (issue 13): footprints of global rasters whose data wraps across 180°,
and ingest naming every file that does not fit its pattern, with the reason."""

from __future__ import annotations

import os

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from leafmap_tiles import store
from leafmap_tiles.cli import main
from leafmap_tiles.errors import PatternError
from leafmap_tiles.store.metadata import compute_metadata


def write_wrapping_global(path):
    """1-degree global EPSG:4326 grid; data only at 170..180 E and 180..165 W, 10..20 S."""
    arr = np.zeros((180, 360), dtype=np.uint8)
    arr[100:110, 350:360] = 7
    arr[100:110, 0:15] = 9
    with rasterio.open(path, "w", driver="GTiff", width=360, height=180, count=1, dtype="uint8",
                       crs="EPSG:4326", transform=from_origin(-180, 90, 1, 1), nodata=0) as d:
        d.write(arr, 1)
    return str(path)


def rings(geom) -> list[list[tuple[float, float]]]:
    polys = geom["coordinates"] if geom["type"] == "MultiPolygon" else [geom["coordinates"]]
    return [sorted({(float(x), float(y)) for x, y in poly[0]}) for poly in polys]


def test_hull_of_data_across_180_is_two_polygons(tmp_path):
    path = write_wrapping_global(tmp_path / "wrap.tif")
    for kwargs in ({}, {"use_chunks": True}):
        md = compute_metadata(path, **kwargs)
        assert md["convex_hull"]["type"] == "MultiPolygon"
        assert sorted(rings(md["convex_hull"])) == sorted([
            [(170.0, -20.0), (170.0, -10.0), (180.0, -20.0), (180.0, -10.0)],
            [(-180.0, -20.0), (-180.0, -10.0), (-165.0, -20.0), (-165.0, -10.0)],
        ])
        assert md["bounds"] == pytest.approx((-180.0, -90.0, 180.0, 90.0))
        assert md["valid_percentage"] == pytest.approx(100 * 250 / (360 * 180))


def test_hull_of_data_around_0_stays_one_polygon(tmp_path):
    """A global raster with data either side of longitude 0 (not of 180°): one hull."""
    arr = np.zeros((180, 360), dtype=np.uint8)
    arr[40:50, 170:200] = 3  # 10 W .. 20 E, 40..50 N
    arr[60:70, 120:130] = 4  # 60..50 W, 20..30 N
    path = tmp_path / "zero.tif"
    with rasterio.open(path, "w", driver="GTiff", width=360, height=180, count=1, dtype="uint8",
                       crs="EPSG:4326", transform=from_origin(-180, 90, 1, 1), nodata=0) as d:
        d.write(arr, 1)
    md = compute_metadata(str(path))
    assert md["convex_hull"]["type"] == "Polygon"
    xs = [x for x, _ in md["convex_hull"]["coordinates"][0]]
    assert min(xs) == -60.0 and max(xs) == 20.0


def test_store_and_terracotta_metadata_route_give_the_multipolygon(tmp_path):
    from starlette.testclient import TestClient

    from leafmap_tiles.server.terracotta_api import create_terracotta_app

    write_wrapping_global(tmp_path / "wrap_fiji.tif")
    ks = store.open(str(tmp_path / "db.sqlite"))
    ks.ingest(str(tmp_path / "wrap_{place}.tif"))
    with TestClient(create_terracotta_app(str(tmp_path / "db.sqlite"))) as c:
        hull = c.get("/metadata/fiji").json()["convex_hull"]
    assert hull["type"] == "MultiPolygon" and len(hull["coordinates"]) == 2


@pytest.fixture
def rp_files(tmp_path, data):
    os.symlink(data / "cog_rgb.tif", tmp_path / "rp10_rcp8.5.tif")
    return tmp_path


def test_ingest_names_the_file_and_the_reason(rp_files, capsys):
    pattern = str(rp_files / "{rp}_{rcp}.tif")
    bad = str(rp_files / "rp10_rcp8.5.tif")
    with pytest.raises(PatternError) as err:
        store.open(str(rp_files / "db.sqlite")).ingest(pattern)
    msg = str(err.value)
    assert bad in msg and "key 'rcp' would be 'rcp8.5': '.' is not allowed in a key value" in msg
    assert main(["ingest", pattern, "-o", str(rp_files / "db2.sqlite")]) != 0
    err_out = capsys.readouterr().err
    assert bad in err_out and "'.' is not allowed" in err_out


def test_ingest_reports_reasons_when_other_files_match(rp_files, data, capsys):
    os.symlink(data / "cog_rgb.tif", rp_files / "rp20_rcp45.tif")
    os.symlink(data / "cog_rgb.tif", rp_files / "rp5_a_b.tif")
    os.symlink(data / "cog_rgb.tif", rp_files / "rp5_.tif")
    pattern = str(rp_files / "{rp}_{rcp}.tif")
    result = store.open(str(rp_files / "db.sqlite")).ingest(pattern, skip_metadata=True)
    assert result.inserted == [("rp20", "rcp45")]
    assert result.reasons == {
        str(rp_files / "rp10_rcp8.5.tif"): "key 'rcp' would be 'rcp8.5': '.' is not allowed in a key value "
                                           "(letters and digits only)",
        str(rp_files / "rp5_.tif"): "key 'rcp' would be empty",
        str(rp_files / "rp5_a_b.tif"): "key 'rcp' would be 'a_b': '_' is not allowed in a key value "
                                       "(letters and digits only)",
    }
    assert main(["ingest", pattern, "-o", str(rp_files / "db2.sqlite"), "--skip-metadata", "-q"]) == 0
    err_out = capsys.readouterr().err
    for path, why in result.reasons.items():
        assert f"{path}: {why}" in err_out
    rep = store.patterns.why_unmatched(store.patterns.parse_pattern("/x/{a}/{a}_{b}.tif"), "/x/k1/k2_z.tif")
    assert rep == "key 'a' appears twice in the pattern with different values ('k1' and 'k2')"

"""leafmap_tiles.collections against real servers: a STAC API (stac-fastapi-static, our
own instance, stopped after the build), nginx with Basic auth for the assets, an
unprotected recording server, and a delaying server for failing headers.

Expectations come from tests/providers/terrascope_catalog.py and from the asset files
read directly with rasterio, never from the code under test."""

from __future__ import annotations

import datetime as dt
import json
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import rasterio
import shapely

from conftest import headers_bench, providers_fixtures as pf
from terrascope_catalog import CATALOG, COLLECTION, NODATA, OFFSET, PASSWORD, SCALE, USERNAME

MAIN_RANGE = ("2009-01-01", "2020-12-31")
EXTRA_RANGE = ("2021-05-01", "2021-05-31")


def _extra_item(base: dict, item_id: str, when: dt.datetime, href: str) -> dict:
    item = json.loads(json.dumps(base))
    item["id"] = item_id
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    for key in ("datetime", "start_datetime", "end_datetime"):
        item["properties"][key] = stamp
    item["assets"]["NDVI"]["href"] = href
    return item


@pytest.fixture(scope="module")
def delay_server(ndvi_assets, tmp_path_factory):
    cog = headers_bench.make_cog(tmp_path_factory.mktemp("delay") / "cog.tif", size=512)
    with headers_bench.DelayServer(cog, delay=0.0, slow=60.0) as server:
        yield server


@pytest.fixture(scope="module")
def servers(ndvi_assets, asset_server, recording_server, delay_server, tmp_path_factory):
    """Our own STAC API over CATALOG plus five 2021 items: E1 on the Basic-auth asset
    server, E2 a 404, E3 not a TIFF, E4 no answer in time, E5 on the unprotected
    recording server.  Yields a dict; ``stop()`` stops the STAC API."""
    if not (pf.STAC_VENV / "bin" / "python").exists():
        pytest.skip(f"{pf.STAC_VENV} absent: run `bash scripts/setup_stac_server.sh`")
    tmp = tmp_path_factory.mktemp("own_stac")
    items = {s.id: pf.item_dict(s, ndvi_assets.info[s.id], asset_server.url(s)) for s in CATALOG}
    base = items[CATALOG[-1].id]
    spec = CATALOG[0]
    extras = {
        "E1_auth": (dt.datetime(2021, 5, 1, 10, tzinfo=dt.timezone.utc), asset_server.url(spec), "auth"),
        "E2_missing": (dt.datetime(2021, 5, 2, 10, tzinfo=dt.timezone.utc),
                       f"{delay_server.base_url}/missing/a.tif", "not_found"),
        "E3_text": (dt.datetime(2021, 5, 3, 10, tzinfo=dt.timezone.utc),
                    f"{delay_server.base_url}/text/a.tif", "not_raster"),
        "E4_slow": (dt.datetime(2021, 5, 4, 10, tzinfo=dt.timezone.utc),
                    f"{delay_server.base_url}/slow/a.tif", "timeout"),
        "E5_open": (dt.datetime(2021, 5, 5, 10, tzinfo=dt.timezone.utc), recording_server.url(spec), None),
    }
    for item_id, (when, href, _) in extras.items():
        items[item_id] = _extra_item(base, item_id, when, href)
    catalog = pf.write_static_catalog(tmp / "catalog", list(items.values()))
    proc, url = pf._start_stac_api(catalog, tmp)
    state = {"url": url, "proc": proc, "items": items, "extras": extras}
    state["stop"] = lambda: pf.stop(proc)
    try:
        yield state
    finally:
        pf.stop(proc)


@pytest.fixture(scope="module")
def terrascope(servers, asset_server, tmp_path_factory):
    """The terrascope provider pointed at our servers, logged out; a private HOME."""
    from leafmap_tiles.providers import stac, terrascope as ts

    mp = pytest.MonkeyPatch()
    for var in ("GDAL_HTTP_AUTH", "GDAL_HTTP_USERPWD", "GDAL_DISABLE_READDIR_ON_OPEN",
                "GDAL_HTTP_HEADER_FILE", "TERRASCOPE_USERNAME", "TERRASCOPE_PASSWORD"):
        mp.delenv(var, raising=False)
    home = tmp_path_factory.mktemp("home")
    mp.setenv("HOME", str(home))
    mp.setenv("LEAFMAP_TILES_TERRASCOPE_HOSTS", asset_server.netloc)
    mp.setenv("LEAFMAP_TILES_TERRASCOPE_STAC_URL", servers["url"])
    ts._reset_client()
    try:
        yield ts
    finally:
        ts._reset_client()
        stac.clear_credentials()
        import os

        removed = {v: os.environ.pop(v) for v in ("GDAL_HTTP_AUTH", "GDAL_HTTP_USERPWD",
                                                  "GDAL_DISABLE_READDIR_ON_OPEN") if v in os.environ}
        stac.forget_gdal_config(removed)
        stac.clear_gdal_http_cache()
        mp.undo()


@pytest.fixture(scope="module")
def built(servers, terrascope, recording_server, asset_server, tmp_path_factory):
    """Everything that needs the STAC API, then the STAC API is stopped:
    ``failed`` (2021 items, before login), ``mixed`` (2021 items, after login),
    ``main`` (CATALOG, after login)."""
    from leafmap_tiles import collections

    ws = tmp_path_factory.mktemp("workspaces")
    out = {"ws": ws}
    recording_server.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out["failed"] = collections.build(terrascope, COLLECTION, name="failed", date_range=EXTRA_RANGE,
                                          workspace=ws / "failed", timeout=2, progress=False)
    out["failed_warnings"] = [str(w.message) for w in caught]
    out["failed_records"] = recording_server.records
    terrascope.login(USERNAME, PASSWORD, quiet=True)
    recording_server.clear()
    out["mixed"] = collections.build(terrascope, COLLECTION, name="mixed", date_range=EXTRA_RANGE,
                                     workspace=ws / "mixed", timeout=2, progress=False)
    out["mixed_records"] = recording_server.records
    out["main_args"] = dict(name="ndvi", date_range=MAIN_RANGE, workspace=ws / "ndvi", assets=["NDVI"])
    out["main"] = collections.build(terrascope, COLLECTION, progress=False, **out["main_args"])
    servers["stop"]()
    assert servers["proc"].poll() is not None
    return out


def _file_header(path) -> dict:
    """The header of a local asset file, read with rasterio directly."""
    with rasterio.open(path) as ds:
        return {
            "width": ds.width, "height": ds.height, "count": ds.count, "dtype": ds.dtypes[0],
            "epsg": ds.crs.to_epsg(), "transform": list(ds.transform)[:6],
            "block_height": ds.block_shapes[0][0], "block_width": ds.block_shapes[0][1],
            "overviews": ds.overviews(1), "compression": ds.compression.name, "nodata": ds.nodata,
        }


# ---------------------------------------------------------------- build and cache


def test_build_indexes_every_item_and_header(built, ndvi_assets, asset_server):
    col = built["main"]
    assert len(col) == len(CATALOG)
    assert col.item_ids == sorted(s.id for s in CATALOG)
    assert col.dates == sorted({s.date for s in CATALOG})
    assert col.bands == ["NDVI"]
    assert col.failures() == []
    for spec in CATALOG:
        a = col.asset(spec.id, "NDVI")
        assert a.href == asset_server.url(spec)
        expected = _file_header(ndvi_assets.path(spec))
        got = {k: a.row[k] for k in expected}
        assert got == expected, spec.id
        assert expected["overviews"] and expected["compression"] == "deflate"  # really a COG
        assert (a.row["stac_scale"], a.row["stac_offset"], a.row["stac_nodata"]) == (SCALE, OFFSET, NODATA)
        assert a.row["cloud_cover"] == spec.cloud_cover
        assert a.row["datetime"] == spec.datetime
        w, s, e, n = ndvi_assets.info[spec.id]["bbox"]
        assert a.row["bbox"] == {"xmin": w, "ymin": s, "xmax": e, "ymax": n}
    assert col.manifest["source"] == "leafmap_tiles.providers.terrascope"
    assert col.manifest["failed"] == 0 and col.manifest["items"] == len(CATALOG)


def test_same_parameters_give_the_cached_index_without_network(built, asset_server):
    from leafmap_tiles import collections

    access_before = asset_server.access_log.read_text()
    from leafmap_tiles.providers import terrascope

    again = collections.build(terrascope, COLLECTION, progress=False, **built["main_args"])
    assert again.table.equals(built["main"].table)
    assert asset_server.access_log.read_text() == access_before  # no header read again
    # force=True searches again: the STAC API is down, so it must fail
    with pytest.raises(Exception):
        collections.build(terrascope, COLLECTION, progress=False, force=True, **built["main_args"])
    # other parameters: not the cached index either
    with pytest.raises(Exception):
        collections.build(terrascope, COLLECTION, progress=False, bbox=[-99.2, 46.9, -99.0, 47.1],
                          **built["main_args"])


def test_header_failures_are_recorded_not_fatal(built, recording_server):
    col = built["failed"]
    assert len(col) == 5
    kinds = {f["id"]: f["error_kind"] for f in col.failures()}
    assert kinds == {"E1_auth": "auth", "E2_missing": "not_found", "E3_text": "not_raster",
                     "E4_slow": "timeout"}
    for f in col.failures():
        assert f["error"]
    assert "401" in next(f["error"] for f in col.failures() if f["id"] == "E1_auth")
    ok = col.asset("E5_open", "NDVI")
    assert ok.row["error"] is None and ok.row["width"] > 0
    assert col.manifest["failed"] == 4
    assert "4 of 5 headers could not be read" in col.summary()
    assert any("4 of 5 headers could not be read" in w for w in built["failed_warnings"])
    # nobody was logged in: no Authorization anywhere
    assert built["failed_records"] and all(r["authorization"] is None for r in built["failed_records"])


def test_credentials_go_to_the_provider_hosts_only(built, recording_server, asset_server):
    col = built["mixed"]
    kinds = {f["id"]: f["error_kind"] for f in col.failures()}
    assert kinds == {"E2_missing": "not_found", "E3_text": "not_raster", "E4_slow": "timeout"}
    assert col.asset("E1_auth", "NDVI").row["width"] > 0       # logged in: nginx answered
    records = built["mixed_records"]
    assert records, "the recording server was not asked for the header"
    assert all(r["authorization"] is None for r in records)


# ---------------------------------------------------------------- offline use


def test_load_and_filter_without_the_stac_api(built, ndvi_assets):
    from leafmap_tiles import collections

    col = collections.load(built["ws"] / "ndvi")
    assert col.table.to_pylist() == built["main"].table.to_pylist()
    assert col.manifest["name"] == "ndvi"

    in2016 = col.filter(date_range=("2016-01-01", "2016-12-31"))
    assert sorted(in2016.item_ids) == sorted(s.id for s in CATALOG if s.datetime.year == 2016)
    late = col.filter(date_range="2019-09-04/2019-09-04")      # 23:30 UTC is still that day
    assert late.item_ids == [s.id for s in CATALOG if s.date == "2019-09-04"]
    clear = col.filter(cloud_cover_lt=10)
    assert clear.item_ids == sorted(s.id for s in CATALOG if s.cloud_cover is not None and s.cloud_cover < 10)
    # a box inside the east tile only, away from the west tile's footprint
    east = next(s for s in CATALOG if s.part == "east")
    west = next(s for s in CATALOG if s.part == "west")
    ew, es, ee, en = ndvi_assets.info[east.id]["bbox"]
    ww, ws_, we, wn = ndvi_assets.info[west.id]["bbox"]
    box = [(we + ee) / 2, (es + en) / 2, (we + ee) / 2 + 1e-4, (es + en) / 2 + 1e-4]
    expected = sorted(s.id for s in CATALOG
                      if shapely.box(*ndvi_assets.info[s.id]["bbox"]).intersects(shapely.box(*box)))
    assert west.id not in expected and east.id in expected
    assert col.filter(bbox=box).item_ids == expected
    assert col.filter(bbox=[0, 0, 1, 1]).item_ids == []
    one = col.filter(where=pc.field("id") == east.id)
    assert one.item_ids == [east.id]
    assert col.filter(where={"id": [east.id, west.id]}).item_ids == sorted([east.id, west.id])
    both = col.filter(date_range=("2010-01-01", "2018-12-31"), cloud_cover_lt=10)
    assert both.item_ids == sorted(s.id for s in CATALOG if 2010 <= s.datetime.year <= 2018
                                   and s.cloud_cover is not None and s.cloud_cover < 10)
    assert len(col) == len(CATALOG)          # filters return new collections


def test_list_collections(built):
    from leafmap_tiles import collections

    listed = {c["name"]: c for c in collections.list_collections(built["ws"])}
    assert set(listed) == {"failed", "mixed", "ndvi"}
    ndvi = listed["ndvi"]
    dates = sorted(s.date for s in CATALOG)
    assert (ndvi["items"], ndvi["failed"], ndvi["date_range"]) == (len(CATALOG), 0, [dates[0], dates[-1]])
    assert ndvi["source"] == "leafmap_tiles.providers.terrascope"
    assert listed["failed"]["failed"] == 4


def _check_geo(meta: dict, expected_bbox) -> None:
    assert meta["version"] == "1.1.0" and meta["primary_column"] == "geometry"
    col = meta["columns"]["geometry"]
    assert col["encoding"] == "WKB" and col["geometry_types"] == ["Polygon"]
    assert "crs" not in col   # default: OGC:CRS84
    assert col["bbox"] == pytest.approx(expected_bbox)
    assert col["covering"]["bbox"]["xmin"] == ["bbox", "xmin"]


def test_workspace_is_partitioned_geoparquet(built):
    root = built["ws"] / "ndvi" / "index"
    parts = sorted(str(p.relative_to(root).parent) for p in root.rglob("*.parquet"))
    expected = sorted({f"year={s.datetime.year}/month={s.datetime.month}" for s in CATALOG})
    assert parts == expected
    for p in root.rglob("*.parquet"):
        meta = json.loads(pq.read_schema(p).metadata[b"geo"])
        assert meta["columns"]["geometry"]["encoding"] == "WKB"


def test_export_is_valid_geoparquet_and_reloads_row_for_row(built, ndvi_assets, tmp_path):
    from leafmap_tiles import collections

    col = built["main"]
    path = col.export(tmp_path / "ndvi.parquet")
    table = pq.read_table(path)
    assert table.num_rows == len(CATALOG)
    meta = json.loads(table.schema.metadata[b"geo"])
    boxes = np.array([ndvi_assets.info[s.id]["bbox"] for s in CATALOG])
    _check_geo(meta, [boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max()])
    assert table.schema.field("geometry").type == pa.binary()
    for row in table.select(["id", "geometry"]).to_pylist():
        g = shapely.from_wkb(row["geometry"])
        assert g.equals(shapely.box(*ndvi_assets.info[row["id"]]["bbox"]))

    again = collections.load(path)
    assert again.table.to_pylist() == col.table.to_pylist()
    assert again.table.equals(col.table) and again.manifest["name"] == "ndvi"

    folder = col.filter(cloud_cover_lt=10).export(tmp_path / "clear")
    assert collections.load(folder).table.to_pylist() == col.filter(cloud_cover_lt=10).table.to_pylist()

    gpd = pytest.importorskip("geopandas")
    gdf = gpd.read_parquet(path)
    assert len(gdf) == len(CATALOG) and gdf.geometry.name == "geometry"
    assert gdf.crs is not None and gdf.crs.equals("OGC:CRS84")
    assert list(gdf["id"]) == col.table.column("id").to_pylist()
    ours = col.to_geodataframe()
    assert ours.crs.equals("OGC:CRS84") and list(ours.geometry.area) == pytest.approx(list(gdf.geometry.area))


# ---------------------------------------------------------------- key store and map


def test_to_store_without_the_stac_api(built, ndvi_assets, asset_server, tmp_path):
    from leafmap_tiles import store
    from leafmap_tiles.store import compute_metadata

    col = built["main"]
    ks = store.open(tmp_path / "tc.sqlite")
    with pytest.raises(ValueError, match="add 'id' to keys"):   # two tiles on 2016-08-16
        col.to_store(ks)
    assert not (tmp_path / "tc.sqlite").exists() or not ks.get_datasets()

    one_per_date = col.filter(where=lambda t: pc.invert(pc.equal(t["id"], CATALOG[6].id)))
    assert one_per_date.to_store(ks) == len(CATALOG) - 1
    datasets = ks.get_datasets()
    assert set(datasets) == {(s.date, "NDVI") for s in CATALOG if s is not CATALOG[6]}
    spec = CATALOG[0]
    assert datasets[(spec.date, "NDVI")] == asset_server.url(spec)
    meta = ks.get_metadata([spec.date, "NDVI"])
    extra = meta["metadata"]
    assert extra["approximate"] is True and extra["item_id"] == spec.id
    assert extra["header"]["overviews"] == _file_header(ndvi_assets.path(spec))["overviews"]
    exact = compute_metadata(ndvi_assets.path(spec))
    assert meta["bounds"] == pytest.approx(exact["bounds"], abs=1e-9)
    lo, hi = meta["range"]
    assert exact["range"][0] <= lo <= hi <= exact["range"][1] <= 250
    assert abs(meta["mean"] - exact["mean"]) < 0.05 * (exact["range"][1] - exact["range"][0])
    assert len(meta["percentiles"]) == 99

    from leafmap_tiles import Map

    m = Map(basemap=None)
    try:   # the rows written are usable datasets: the map shows one (stretch from the metadata)
        layer = m.add_dataset(ks, date=spec.date, asset="NDVI", colormap="RdYlGn")
        assert layer.info["bounds"] == pytest.approx(exact["bounds"], abs=1e-6)
    finally:
        m.close()

    ks2 = store.open(tmp_path / "tc2.sqlite")
    assert col.to_store(ks2, keys=("date", "id", "asset")) == len(CATALOG)
    assert len(ks2.get_datasets()) == len(CATALOG)


def test_time_slider_and_add_raster_from_the_index(built, ndvi_assets, terrascope):
    import io

    import morecantile
    import requests
    from PIL import Image

    from leafmap_tiles import Map

    col = built["main"]
    tms = morecantile.tms.get("WebMercatorQuad")
    east = next(s for s in CATALOG if s.part == "east")
    west = next(s for s in CATALOG if s.part == "west")
    # logged in by the `built` fixture, before earlier tests' maps (and their tile
    # server) closed: the new server started for this map must get the credentials too
    m = Map(basemap=None)
    try:
        slider = m.add_time_slider(col, asset="NDVI", colormap="RdYlGn", vmin=0, vmax=250)
        assert slider.labels == col.dates
        k = slider.labels.index(east.date)
        slider.slider.value = k
        shown = slider.current_layer
        assert isinstance(shown.info["path"], list) and len(shown.info["path"]) == 2  # mosaic of the date
        assert (shown.scale, shown.offset) == (SCALE, OFFSET)
        w, s, e, n = ndvi_assets.info[east.id]["bbox"]
        ow = ndvi_assets.info[west.id]["bbox"][2]
        lon, lat = (max(w, ow) + e) / 2, (s + n) / 2
        t = tms.tile(lon, lat, 16)
        url = shown.url.replace("{z}", str(t.z)).replace("{x}", str(t.x)).replace("{y}", str(t.y))
        r = requests.get(url, timeout=60)
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"   # protected asset
        alpha = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGBA"))[..., 3]
        assert (alpha > 0).mean() > 0.5

        spec = CATALOG[-1]
        layer = m.add_raster(col.asset(spec.id, "NDVI"), colormap="RdYlGn", vmin=0, vmax=250)
        assert (layer.scale, layer.offset) == (SCALE, OFFSET)
        assert layer.style["nodata"] == repr(float(NODATA))
        assert layer.name.startswith(spec.id)
        assert layer.info["bounds"] == pytest.approx(ndvi_assets.info[spec.id]["bbox"], abs=1e-6)
    finally:
        m.close()


def test_benchmark_script_reads_the_same_headers_at_each_concurrency():
    result = headers_bench.run(files=12, delay=0.0, concurrency=(4, 1))
    summary = result["summary"]
    assert summary["failed"] == 0 and summary["same_headers"] is True
    h = result["headers"][4][0]
    assert (h["width"], h["height"], h["dtype"], h["epsg"], h["block_width"]) == (1024, 1024, "uint16", 32631, 256)
    assert h["overviews"] == [2, 4] and h["compression"] == "deflate" and h["nodata"] == 0.0


# ---------------------------------------------------------------- pixel reads


def _expected_point(path, lon, lat):
    """Physical NDVI of the pixel holding (lon, lat) in a local asset file, rasterio
    alone: DN * SCALE + OFFSET, NaN for nodata 255 or outside."""
    from rasterio.warp import transform as warp_transform

    with rasterio.open(path) as ds:
        xs, ys = warp_transform("EPSG:4326", ds.crs, [lon], [lat])
        r, c = ds.index(xs[0], ys[0])
        if not (0 <= r < ds.height and 0 <= c < ds.width):
            return np.nan
        dn = int(ds.read(1)[r, c])
    return np.nan if dn == NODATA else dn * SCALE + OFFSET


def test_sample_points_with_credentials_and_mosaic(built, ndvi_assets):
    """Values at points on every date, read through the Basic-auth server (the login of
    the `built` fixture), against rasterio reading the same files locally; on the
    two-tile date each point comes from the tile that holds it."""
    col = built["main"]
    east = next(s for s in CATALOG if s.part == "east")
    west = next(s for s in CATALOG if s.part == "west")
    ew, es, ee, en = ndvi_assets.info[east.id]["bbox"]
    ww, ws, we, wn = ndvi_assets.info[west.id]["bbox"]
    points = {"in_west": ((ww + we) / 2 - 0.002, (ws + wn) / 2), "in_east": ((ee + we) / 2 + 0.001, (es + en) / 2 + 0.001),
              "corner": (ww + 0.0004, wn - 0.0004), "far": (10.0, 10.0)}
    df = col.sample_points(points, asset="NDVI", progress=False)
    assert list(df.columns) == ["point", "lon", "lat", "date", "value"]
    assert len(df) == len(points) * len(col.dates)
    by_date = {}
    for spec in CATALOG:
        by_date.setdefault(spec.date, []).append(spec)
    checked = 0
    for _, row in df.iterrows():
        specs = by_date[row["date"].strftime("%Y-%m-%d")]
        expected = np.nan
        for spec in specs:  # the first tile with data
            v = _expected_point(ndvi_assets.path(spec), row["lon"], row["lat"])
            if not np.isnan(v):
                expected = v
                break
        if np.isnan(expected):
            assert np.isnan(row["value"]), (row["point"], row["date"])
        else:
            assert row["value"] == pytest.approx(expected, abs=1e-12), (row["point"], row["date"])
            checked += 1
    assert checked >= 25
    assert df[df["point"] == "far"]["value"].isna().all()
    mosaic = df[(df["date"] == east.date)].set_index("point")["value"]
    assert not np.isnan(mosaic["in_west"]) and not np.isnan(mosaic["in_east"])
    with pytest.raises(ValueError):
        col.sample_points([(1000, 0)], asset="NDVI")
    with pytest.raises(KeyError):
        col.sample_points([(0, 0)], asset="B04")


def test_read_bbox_as_dataarray(built, ndvi_assets):
    from rasterio.windows import from_bounds

    col = built["main"]
    spec = CATALOG[0]
    w, s, e, n = ndvi_assets.info[spec.id]["bbox"]
    bbox = (w + 0.2 * (e - w), s + 0.3 * (n - s), w + 0.7 * (e - w), s + 0.8 * (n - s))
    da = col.read(bbox, asset="NDVI", progress=False)
    assert da.dims == ("time", "y", "x")
    assert [str(t)[:10] for t in da["time"].values] == col.dates
    assert da.rio.crs.to_epsg() == 26914
    t = da.rio.transform()
    with rasterio.open(ndvi_assets.path(spec)) as ds:
        assert t.a == ds.transform.a and (t.c - ds.transform.c) % t.a == 0 and (ds.transform.f - t.f) % t.a == 0
        win = from_bounds(t.c, t.f + t.e * da.sizes["y"], t.c + t.a * da.sizes["x"], t.f, ds.transform)
        dn = ds.read(1, window=win.round_offsets().round_lengths()).astype(float)
    expected = np.where(dn == NODATA, np.nan, dn * SCALE + OFFSET)
    np.testing.assert_allclose(da.isel(time=0).values, expected, rtol=0, atol=1e-12)
    assert da.x.values[0] == t.c + t.a / 2  # pixel centres
    # the mosaic date: no gap where one of its two tiles has data
    east = next(sp for sp in CATALOG if sp.part == "east")
    k = col.dates.index(east.date)
    assert np.isfinite(da.isel(time=k).values).mean() > 0.95
    # twice the pixel size: the cached header's first overview (factor 2), exact pixels
    coarse = col.read(bbox, asset="NDVI", resolution=2 * t.a, progress=False)
    ct = coarse.rio.transform()
    with rasterio.open(ndvi_assets.path(spec), overview_level=0) as ov:
        win = from_bounds(ct.c, ct.f + ct.e * coarse.sizes["y"], ct.c + ct.a * coarse.sizes["x"], ct.f, ov.transform)
        dn = ov.read(1, window=win.round_offsets().round_lengths(), boundless=True, fill_value=NODATA).astype(float)
    np.testing.assert_allclose(coarse.isel(time=0).values, np.where(dn == NODATA, np.nan, dn * SCALE + OFFSET),
                               rtol=0, atol=1e-12)
    with pytest.raises(ValueError):
        col.read((5, 50, 4, 51), asset="NDVI")

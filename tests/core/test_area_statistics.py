"""layer.statistics(geometry): area statistics on the tile server, against rasterio + numpy
reading the same pixels (the whole file read with rasterio, the polygon rasterised over
the file's own grid with centre-in-polygon, reduced with numpy)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import shapely.geometry as sg
from rasterio.features import geometry_mask
from rasterio.warp import transform as warp_transform
from rasterio.warp import transform_geom

from leafmap_tiles.errors import BadRequestError
from tests.conftest import data
from tests.map.helpers import NDVI, copy_with_nodata_block, naip_files, pixel_lonlat

NAIP_2009 = naip_files()[0]


def lonlat_polygon(path, rows_cols):
    """An EPSG:4326 polygon through the given (row, col) pixel positions (fractional
    allowed) of ``path``."""
    with rasterio.open(path) as ds:
        xs, ys = zip(*[ds.transform @ (c, r) for r, c in rows_cols])
        lons, lats = warp_transform(ds.crs, "EPSG:4326", list(xs), list(ys))
    return sg.Polygon(list(zip(lons, lats)))


FIELD = [(30.3, 40.2), (60.7, 200.1), (210.4, 170.6), (180.2, 20.9)]  # a quadrilateral field


def native(poly, crs):
    """``poly`` (EPSG:4326) in ``crs``: its edges straight in lon/lat (GeoJSON's), so
    densified to the server's step (``zonal.DENSIFY_DEGREES``) before the projection; a
    polygon whose edges are all shorter is projected as it is."""
    import shapely

    from leafmap_tiles.render import zonal

    return transform_geom("EPSG:4326", crs, sg.mapping(shapely.segmentize(sg.shape(poly), zonal.DENSIFY_DEGREES)))


def reference(path, poly, expression=None, band=1, percentiles=(2, 98)):
    """rasterio + numpy alone: values inside ``poly`` (pixel centres), nodata excluded,
    scale/offset tags applied for a plain band."""
    with rasterio.open(path) as ds:
        geom = native(poly, ds.crs)
        inside = geometry_mask([geom], out_shape=(ds.height, ds.width), transform=ds.transform, invert=True)
        a = ds.read(masked=True).astype("float64")
        scales, offsets = ds.scales, ds.offsets
    if expression == NDVI:
        b1, b4 = a[0], a[3]
        with np.errstate(all="ignore"):
            v = (b4 - b1) / (b4 + b1)
        v = np.ma.masked_invalid(v)
        vals = v.data[inside & ~np.ma.getmaskarray(v)]
    else:
        b = a[band - 1]
        vals = b.data[inside & ~np.ma.getmaskarray(b)] * scales[band - 1] + offsets[band - 1]
    out = {"count": vals.size, "mean": vals.mean(), "median": np.median(vals), "min": vals.min(),
           "max": vals.max(), "std": vals.std()}
    for p, q in zip(percentiles, np.percentile(vals, percentiles)):
        out[f"p{p}"] = q
    return out, int(inside.sum())


def assert_same(got, ref):
    assert got["count"] == ref["count"]
    for k, v in ref.items():
        assert got[k] == pytest.approx(v, rel=1e-12, abs=1e-12), k


def test_ndvi_over_a_field_equals_rasterio_numpy(m):
    lyr = m.add_raster(NAIP_2009, expression=NDVI, colormap="RdYlGn", vmin=-0.2, vmax=0.6)
    poly = lonlat_polygon(NAIP_2009, FIELD)
    got = lyr.statistics(poly, percentiles=(2, 10, 90, 98))
    ref, pixels = reference(NAIP_2009, poly, NDVI, percentiles=(2, 10, 90, 98))
    assert_same(got, ref)
    assert got["pixels"] == pixels and got["band"] == NDVI
    assert 20000 < got["count"] <= pixels
    # a GeoJSON dict and a Feature give the same answer as the shapely geometry
    assert lyr.statistics(sg.mapping(poly), percentiles=(2, 10, 90, 98)) == got
    feature = {"type": "Feature", "properties": {}, "geometry": sg.mapping(poly)}
    assert lyr.statistics(feature, percentiles=(2, 10, 90, 98)) == got
    # one meaning per name: layer.statistics is the area method, the registration's
    # overview statistics are the plain list layer.band_statistics
    assert type(lyr.band_statistics) is list and isinstance(lyr.band_statistics[0]["p2"], float)
    assert not isinstance(lyr.statistics, list) and "band_statistics" in repr(lyr.statistics)
    # the list form of earlier versions (README) still answers, with a DeprecationWarning
    with pytest.warns(DeprecationWarning, match="band_statistics"):
        assert lyr.statistics[0] == lyr.band_statistics[0]
    with pytest.warns(DeprecationWarning):
        assert len(lyr.statistics) == 1 and list(lyr.statistics) == lyr.band_statistics


def test_one_pixel_checked_by_hand(m):
    """Pixel (128, 128) of the 2009 window holds R, G, B, NIR = 91, 100, 88, 96: a
    polygon around its centre only (not reaching the neighbours' centres)."""
    lyr = m.add_raster(NAIP_2009, expression=NDVI)
    poly = lonlat_polygon(NAIP_2009, [(128.2, 128.2), (128.2, 128.8), (128.8, 128.8), (128.8, 128.2)])
    got = lyr.statistics(poly)
    assert got["count"] == 1 and got["pixels"] == 1
    assert got["mean"] == got["median"] == got["min"] == got["max"] == pytest.approx(5 / 187, abs=1e-15)
    assert got["std"] == 0.0
    rgb = m.add_raster(NAIP_2009, indexes=[4, 1, 2])
    assert [rgb.statistics(poly, band=b)["mean"] for b in (1, 2, 3)] == [96.0, 91.0, 100.0]
    # 2 x 2 pixels (128..129, 128..129): NIR values read by hand with rasterio
    with rasterio.open(NAIP_2009) as ds:
        nir = ds.read(4)[128:130, 128:130].astype(float)
    poly4 = lonlat_polygon(NAIP_2009, [(128.1, 128.1), (128.1, 129.9), (129.9, 129.9), (129.9, 128.1)])
    got4 = rgb.statistics(poly4)
    assert got4["count"] == 4 and got4["mean"] == nir.mean() and got4["max"] == nir.max()


def test_scale_offset_applied_and_nodata_excluded(m):
    """cog_scale.tif: int16, band 1 scale 0.0001 offset 1000, band 2 0.001 / 2000,
    nodata 0 (12 nodata pixels in band 1)."""
    path = data("cog_scale.tif")
    layers = {b: m.add_raster(path, indexes=b) for b in (1, 2)}
    with rasterio.open(path) as ds:
        w, s, e, n = ds.bounds
        pts = [(w + 0.05 * (e - w), s + 0.05 * (n - s)), (e - 0.1 * (e - w), s + 0.2 * (n - s)),
               (w + 0.6 * (e - w), n - 0.02 * (n - s))]
        lons, lats = warp_transform(ds.crs, "EPSG:4326", *zip(*pts))
    poly = sg.Polygon(list(zip(lons, lats)))
    for band in (1, 2):
        got = layers[band].statistics(poly)
        ref, pixels = reference(path, poly, band=band)
        assert_same(got, ref)
        assert got["mean"] > 1000 * band  # physical units, not DN
    # the layer's own scale/offset (e.g. STAC raster:scale) replace the file's tags
    lyr = layers[1]
    own = m.server.statistics(lyr.source_id, sg.mapping(poly), lyr.style, (), scale=2.0, offset=-1.0)
    with rasterio.open(path) as ds:
        geom = native(poly, ds.crs)
        # this triangle's edges (~1 degree) are densified: its lon/lat edges are up to
        # 0.43 px off their chords on this grid, 58 pixel centres change sides
        chords = geometry_mask([transform_geom("EPSG:4326", ds.crs, sg.mapping(poly))], out_shape=ds.shape,
                               transform=ds.transform, invert=True)
        inside = geometry_mask([geom], out_shape=(ds.height, ds.width), transform=ds.transform, invert=True)
        b1 = ds.read(1, masked=True)
    raw = b1.data[inside & ~b1.mask].astype(float)
    assert own["statistics"][0]["mean"] == pytest.approx((raw * 2.0 - 1.0).mean(), rel=1e-12)
    assert own["pixels"] == int(inside.sum()) != int(chords.sum())


def test_nodata_block_and_mosaic_fill(m, tmp_path):
    hole = str(tmp_path / "naip_2009_hole.tif")
    copy_with_nodata_block(NAIP_2009, hole, slice(100, 141), slice(100, 141))
    poly = lonlat_polygon(NAIP_2009, FIELD)
    holed = m.add_raster(hole, expression=NDVI).statistics(poly)
    full_ref, pixels = reference(NAIP_2009, poly, NDVI)
    hole_ref, _ = reference(hole, poly, NDVI)
    assert_same(holed, hole_ref)
    assert holed["count"] == full_ref["count"] - 41 * 41  # the block lies inside the field
    # a same-date mosaic: each pixel from the first file with data (the hole from the second)
    mosaic = m.add_raster([hole, NAIP_2009], expression=NDVI).statistics(poly)
    assert_same(mosaic, full_ref)
    assert mosaic["pixels"] == pixels


def test_outside_and_bad_geometries(m):
    lyr = m.add_raster(NAIP_2009, expression=NDVI)
    far = sg.box(10.0, 10.0, 10.1, 10.1)
    out = lyr.statistics(far)
    assert out["count"] == 0 and out["mean"] is None and out["p98"] is None and out["pixels"] == 0
    lon, lat = pixel_lonlat(NAIP_2009, 10, 10)
    for bad in (sg.Point(lon, lat), {"type": "LineString", "coordinates": [[lon, lat], [lon + 0.01, lat]]},
                {"type": "Polygon", "coordinates": [[[lon, lat], [lon, lat], [lon, lat], [lon, lat]]]},
                {"type": "Polygon", "coordinates": [[[500, 0], [501, 0], [501, 1], [500, 0]]]},
                [1, 2, 3], "POLYGON"):
        with pytest.raises(BadRequestError):
            lyr.statistics(bad)
    with pytest.raises(BadRequestError):
        lyr.statistics(lonlat_polygon(NAIP_2009, FIELD), percentiles=(101,))
    with pytest.raises(BadRequestError):
        lyr.statistics(lonlat_polygon(NAIP_2009, FIELD), band=2)  # an expression has one band


def test_too_large_an_area_is_refused(m, monkeypatch):
    monkeypatch.setenv("LEAFMAP_TILES_MAX_AREA_PIXELS", "1000")  # read by a new server process
    from leafmap_tiles.client import TileServer
    from leafmap_tiles.map.layers import make_raster_layer

    with TileServer() as srv:
        lyr = make_raster_layer(srv, NAIP_2009, expression=NDVI)
        with pytest.raises(BadRequestError, match="LEAFMAP_TILES_MAX_AREA_PIXELS"):
            lyr.statistics(lonlat_polygon(NAIP_2009, FIELD))
        small = lonlat_polygon(NAIP_2009, [(10, 10), (10, 20), (20, 20), (20, 10)])
        assert lyr.statistics(small)["count"] > 0


def test_the_limit_counts_the_pixels_read_not_the_bounding_box(m, monkeypatch):
    """A thin diagonal strip across the file: its bounding box is ~62,000 pixels, the
    pixels along it (what is read) ~1,800; a limit of 5,000 lets it through with the
    same numbers as rasterio + numpy over the whole file, and still refuses a square
    of 10,000 pixels inside."""
    monkeypatch.setenv("LEAFMAP_TILES_MAX_AREA_PIXELS", "5000")  # read by a new server process
    from leafmap_tiles.client import TileServer
    from leafmap_tiles.map.layers import make_raster_layer

    strip = lonlat_polygon(NAIP_2009, [(2.0, 2.0), (2.0, 8.5), (250.0, 254.5), (250.0, 248.0)])
    ref, pixels = reference(NAIP_2009, strip, NDVI)
    with rasterio.open(NAIP_2009) as ds:
        bbox_pixels = (248 + 1) * (254.5 - 2 + 1)
        assert ds.width * ds.height > bbox_pixels > 5000 * 12  # the old rule refused it
    assert 1400 < pixels < 1800  # ~6.5 px wide x 248 rows
    with TileServer() as srv:
        lyr = make_raster_layer(srv, NAIP_2009, expression=NDVI)
        got = lyr.statistics(strip)
        assert got["pixels"] == pixels
        assert_same(got, ref)
        square = lonlat_polygon(NAIP_2009, [(100, 100), (100, 200), (200, 200), (200, 100)])
        with pytest.raises(BadRequestError, match=r"needs 10\d\d\d pixels of the source read.*more than 5000"):
            lyr.statistics(square)
        rgb = make_raster_layer(srv, NAIP_2009, indexes=[1, 2, 3])  # plain bands through the same reads
        for b in (1, 2, 3):
            ref_b, _ = reference(NAIP_2009, strip, band=b)
            assert_same(rgb.statistics(strip, band=b), ref_b)


def test_polygon_far_larger_than_a_utm_raster_counts_every_pixel(m):
    """A continent-sized box over a UTM scene: cut to the raster's footprint before the
    projection (reprojected whole, its far parts left UTM's domain and 0 pixels were
    counted). Every pixel of the scene is inside: the count is the band's valid pixels."""
    lyr = m.add_raster(NAIP_2009, indexes=[1])
    with rasterio.open(NAIP_2009) as ds:
        b1 = ds.read(1, masked=True)
        total = ds.width * ds.height
    for box in [(-180, -89, 180, 89), (-100, -89, -98, 89), (-180, 0, 0, 80)]:
        got = lyr.statistics(sg.box(*box))
        assert got["pixels"] == total, box
        assert got["count"] == int((~np.ma.getmaskarray(b1)).sum()), box
        assert got["mean"] == pytest.approx(float(b1.mean()), rel=1e-12), box


def test_self_crossing_polygon_keeps_both_lobes_and_nan_is_refused(m):
    lyr = m.add_raster(NAIP_2009, indexes=[1])
    with rasterio.open(NAIP_2009) as ds:
        cx, cy = ds.transform @ (128, 128)
        (lon,), (lat,) = warp_transform(ds.crs, "EPSG:4326", [cx], [cy])
    d, e = 0.0003, 0.0002
    # an asymmetric bowtie: its two lobes are counted, as rasterio's own mask of the ring
    ring = [(lon - d, lat - e), (lon + d, lat + e), (lon + d, lat - e), (lon - d, lat + e * 1.2), (lon - d, lat - e)]
    poly = {"type": "Polygon", "coordinates": [ring]}
    with rasterio.open(NAIP_2009) as ds:
        inside = geometry_mask([transform_geom("EPSG:4326", ds.crs, poly)], out_shape=(ds.height, ds.width),
                               transform=ds.transform, invert=True)
    got = lyr.statistics(poly)
    assert got["pixels"] == int(inside.sum()) > 0
    # a symmetric bowtie (signed areas cancel) is two lobes, not an empty polygon
    sym = [(lon - d, lat - e), (lon + d, lat + e), (lon + d, lat - e), (lon - d, lat + e), (lon - d, lat - e)]
    assert lyr.statistics({"type": "Polygon", "coordinates": [sym]})["pixels"] > 0
    with pytest.raises(BadRequestError, match="finite"):
        lyr.statistics(sg.box(float("nan"), lat - e, lon, lat))


def test_mosaic_counts_the_pixels_of_later_files_beyond_the_first(m, tmp_path):
    """A same-date mosaic of the scene's west and east halves: a field across both is
    the whole scene's (the east half's pixels were dropped: the read was clipped to
    the first file)."""
    from rasterio.windows import Window
    from rasterio.windows import transform as window_transform

    halves = []
    with rasterio.open(NAIP_2009) as ds:
        profile = ds.profile
        for name, win in (("west", Window(0, 0, 128, 256)), ("east", Window(128, 0, 128, 256))):
            p = tmp_path / f"{name}.tif"
            prof = dict(profile, width=128, height=256, transform=window_transform(win, ds.transform))
            prof.pop("blockxsize", None), prof.pop("blockysize", None), prof.pop("tiled", None)
            with rasterio.open(p, "w", **prof) as out:
                out.write(ds.read(window=win))
            halves.append(str(p))
    poly = lonlat_polygon(NAIP_2009, FIELD)  # cols 20-200: across both halves
    ref, pixels = reference(NAIP_2009, poly, expression=NDVI)
    got = m.add_raster(halves, expression=NDVI).statistics(poly)
    assert got["pixels"] == pixels
    assert_same(got, ref)


def polar_reference(path, poly, step):
    """rasterio + numpy on the polar grid: ``poly`` densified in EPSG:4326 (edges of at
    most ``step`` degrees, straight in lon/lat) then projected, centre-in-polygon."""
    import shapely

    with rasterio.open(path) as ds:
        geom = transform_geom("EPSG:4326", ds.crs, sg.mapping(shapely.segmentize(poly, step)))
        inside = geometry_mask([geom], out_shape=(ds.height, ds.width), transform=ds.transform, invert=True)
        a = ds.read(1, masked=True)
    d = a.data.astype("float64")
    vals = d[inside & ~np.ma.getmaskarray(a) & np.isfinite(d)]
    ref = {"count": vals.size, "mean": vals.mean(), "median": np.median(vals), "min": vals.min(),
           "max": vals.max(), "std": vals.std(), "p2": np.percentile(vals, 2), "p98": np.percentile(vals, 98)}
    return ref, int(inside.sum())


def test_polygon_edges_follow_their_parallels_on_a_polar_grid(m):
    """bremen sea ice (EPSG:3031, 6.25 km): a box's edges are straight in lon/lat, so a
    parallel is a circle on the polar grid. Reprojected as straight chords, the ring
    -75..-60 over every longitude collapsed to nothing (0 pixels) and the sector 0..90E
    lost 9 of its 10 parts; densified in EPSG:4326 first they are rasterio's mask of
    the densified polygon, and a finer densification changes no pixel."""
    from leafmap_tiles.render import zonal

    path = data("bremen_sea_ice_conc_2022_9_9.tif")
    lyr = m.add_raster(path)
    for box, least, chord_share in (((-180, -75, 180, -60), 600_000, 0.01), ((0, -75, 90, -65), 90_000, 0.7),
                                    ((-60, -78, -20, -65), 20_000, 0.95)):
        poly = sg.box(*box)
        got = lyr.statistics(poly)
        ref, pixels = polar_reference(path, poly, zonal.DENSIFY_DEGREES)
        assert got["pixels"] == pixels > least, box
        assert_same(got, ref)
        fine, fine_pixels = polar_reference(path, poly, 0.005)
        assert fine_pixels == pixels and fine["count"] == ref["count"], box
        # the chords alone (the old projection) miss part of the area: all of the ring,
        # a third of the 90-degree sector, 8% of the Weddell box
        with rasterio.open(path) as ds:
            chords = geometry_mask([transform_geom("EPSG:4326", ds.crs, sg.mapping(poly))], out_shape=ds.shape,
                                   transform=ds.transform, invert=True)
        assert chords.sum() < chord_share * pixels, box
    ring = lyr.statistics(sg.box(-180, -75, 180, -60))
    assert (ring["count"], ring["pixels"]) == (414049, 677528)


def test_small_polygons_are_not_densified():
    """A field of 0.02 degrees keeps its vertices (same dict): its statistics are as before."""
    from leafmap_tiles.render import zonal

    field = sg.mapping(sg.box(-112.71, 40.79, -112.69, 40.81))
    assert zonal.densify(field) is field
    big = zonal.densify(sg.mapping(sg.box(0, -75, 90, -65)))
    assert len(big["coordinates"][0]) > (90 + 10) * 2 / zonal.DENSIFY_DEGREES

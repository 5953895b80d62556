"""What the local STAC API of the provider tests holds (used by conftest.py and the
tests, which compute their expectations from ``CATALOG``, never from the code under
test). NDVI comes from the NAIP rasters in tests/data/naip (windows of shared/data/naip;
opengeos/data, MIT)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from leafmap_tiles import settings

REPO = Path(__file__).resolve().parents[2]
# The bundled 256x256 NAIP windows (tests/data/naip: same pixel window for every date,
# georeferencing kept) so that a clean clone tests the same everywhere;
# LEAFMAP_TILES_DATA=<shared data folder> (or its old name LEAFMAP_TILES_SHARED_DATA, see
# leafmap_tiles.settings) uses the full NAIP quarter-quads instead.
NAIP_DIR = (
    Path(settings.current().data) / "naip" if settings.current().data
    else REPO / "tests" / "data" / "naip"
)

COLLECTION = "terrascope-s2-ndvi-v2"
USERNAME = "vito-tester"
PASSWORD = "n0t-a-real-s3cret"
SCALE, OFFSET, NODATA = 0.004, -0.08, 255


@dataclass(frozen=True)
class ItemSpec:
    id: str
    datetime: dt.datetime
    naip_date: str          # YYYYMMDD of the NAIP file the NDVI comes from
    cloud_cover: float | None
    part: str = "full"      # "full", "west" or "east" half of the NAIP extent
    raster_style: str = "bands"  # "bands": raster:bands v1; "asset": raster:scale on the asset

    @property
    def date(self) -> str:
        return self.datetime.strftime("%Y-%m-%d")

    @property
    def filename(self) -> str:
        return f"{self.id}_NDVI_10M.tif"


def _utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.timezone.utc)


# What the STAC server holds. 10 dates, two neighbouring tiles on 2016-08-16, one item
# without eo:cloud_cover (2012-07-31), a cloud cover exactly at 10 (2014) and just
# above (2020), one item late in the day (2019-09-04 23:30 UTC) for inclusive end dates.
CATALOG: list[ItemSpec] = [
    ItemSpec("S2A_20090818T172512_14TNT_NDVI_V210", _utc(2009, 8, 18, 17, 25, 12), "20090818", 2.5),
    ItemSpec("S2A_20100629T171030_14TNT_NDVI_V210", _utc(2010, 6, 29, 17, 10, 30), "20100629", 35.0),
    ItemSpec("S2B_20120731T173301_14TNT_NDVI_V210", _utc(2012, 7, 31, 17, 33, 1), "20120731", None),
    ItemSpec("S2A_20140720T170955_14TNT_NDVI_V210", _utc(2014, 7, 20, 17, 9, 55), "20140720", 10.0),
    ItemSpec("S2B_20150926T172040_14TNT_NDVI_V210", _utc(2015, 9, 26, 17, 20, 40), "20150926", 0.0),
    ItemSpec("S2A_20160816T171516_14TNT_NDVI_V210", _utc(2016, 8, 16, 17, 15, 16), "20160816", 4.2, "west"),
    ItemSpec("S2A_20160816T171516_14TPT_NDVI_V210", _utc(2016, 8, 16, 17, 15, 16), "20160816", 6.8, "east"),
    ItemSpec("S2B_20170827T173000_14TNT_NDVI_V210", _utc(2017, 8, 27, 17, 30, 0), "20170827", 62.3),
    ItemSpec("S2A_20180716T171210_14TNT_NDVI_V210", _utc(2018, 7, 16, 17, 12, 10), "20180716", 7.9),
    ItemSpec("S2B_20190904T233000_14TNT_NDVI_V210", _utc(2019, 9, 4, 23, 30, 0), "20190904", 1.1),
    ItemSpec("S2A_20200831T172233_14TNT_NDVI_V210", _utc(2020, 8, 31, 17, 22, 33), "20200831", 10.5,
             raster_style="asset"),
]

# stac-fastapi's default page size; CATALOG holds more items, so a full search pages.
SERVER_PAGE_SIZE = 10


def naip_path(date: str) -> Path:
    return NAIP_DIR / f"m_4709963_se_14_1_{date}.tif"


def encode_ndvi(b1: np.ndarray, b4: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Terrascope encoding of NDVI computed from NAIP red (b1) and NIR (b4)."""
    red = b1.astype("float64")
    nir = b4.astype("float64")
    total = nir + red
    with np.errstate(divide="ignore", invalid="ignore"):
        ndvi = np.where(total > 0, (nir - red) / total, np.nan)
    dn = np.clip(np.round((ndvi + 0.08) / 0.004), 0, 250)
    out = np.full(b1.shape, NODATA, dtype="uint8")
    ok = valid & np.isfinite(ndvi)
    out[ok] = dn[ok].astype("uint8")
    return out

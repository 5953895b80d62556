"""build_stack names the asset that failed and raises the one classifier's class
(leafmap_tiles.gdal_errors.classify), not a class of its own choosing."""

from __future__ import annotations

from pathlib import Path

import pytest

from leafmap_tiles.client.stack import build_stack
from leafmap_tiles.errors import InvalidSourceError, SourceNotFoundError

DATA = Path(__file__).resolve().parents[1] / "data"


def test_missing_member_is_source_not_found(tmp_path):
    members = [{"name": "red", "path": str(DATA / "cog.tif")},
               {"name": "nir", "path": str(tmp_path / "absent.tif")}]
    with pytest.raises(SourceNotFoundError, match="asset 'nir'.*absent.tif.*no such file"):
        build_stack(members, str(tmp_path))
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_member_that_is_not_a_raster_is_invalid(tmp_path):
    text = tmp_path / "notes.tif"
    text.write_text("not a raster\n")
    members = [{"name": "red", "path": str(DATA / "cog.tif")}, {"name": "nir", "path": str(text)}]
    with pytest.raises(InvalidSourceError, match="asset 'nir'.*not a raster format"):
        build_stack(members, str(tmp_path))


def test_two_readable_members_stack(tmp_path):
    members = [{"name": "a", "path": str(DATA / "cog.tif")}, {"name": "b", "path": str(DATA / "cog.tif")}]
    out = build_stack(members, str(tmp_path))
    assert out["band_names"] == ["a", "b"] and Path(out["path"]).exists()

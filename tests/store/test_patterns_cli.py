"""Raster patterns and the ``leafmap-tiles`` command line."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from leafmap_tiles import store
from leafmap_tiles.cli import main
from leafmap_tiles.errors import InvalidDatabaseError, PatternError
from leafmap_tiles.store.patterns import find_files, parse_pattern


@pytest.fixture
def tree(tmp_path, data):
    """S2/20200601_red_v1.tif style files, all links to one real raster."""
    src = data / "cog_rgb.tif"
    for sensor in ("S2", "L8"):
        (tmp_path / sensor).mkdir()
        for name in ("20200601_red_v1", "20200601_nir_v2", "20200701_red_v1"):
            os.symlink(src, tmp_path / sensor / f"{name}.tif")
    os.symlink(src, tmp_path / "S2" / "2020-06-01_red_v1.tif")  # "-" inside a key value
    return tmp_path


def test_parse_pattern_rules():
    p = parse_pattern("/x/{sensor}/{date}_{band}{}.tif")
    assert p.keys == ("sensor", "date", "band")
    assert p.glob == "/x/*/*_**.tif"
    assert p.regex.fullmatch("/x/S2/20200601_red_v1.tif")
    assert not p.regex.fullmatch("/x/S-2/20200601_red.tif")  # keys are letters and digits only
    rep = parse_pattern("/x/{a}/{a}_{b}.tif")
    assert rep.keys == ("a", "b")
    assert rep.regex.fullmatch("/x/k1/k1_z.tif") and not rep.regex.fullmatch("/x/k1/k2_z.tif")
    assert parse_pattern("/x/[{a}].tif").glob == "/x/[[]*].tif"  # glob characters are literal
    for bad in ("/x/{a-b}.tif", "/x/{a.b}.tif", "/x/{a:3}.tif", "/x/{limit}.tif", "/x/no_keys.tif",
                "/x/{}.tif", "/x/{a.tif"):
        with pytest.raises(PatternError):
            parse_pattern(bad)


def test_find_files(tree):
    match = find_files(str(tree / "{sensor}" / "{date}_{band}_{}.tif"))
    assert match.keys == ("sensor", "date", "band")
    assert len(match.files) == 6
    assert match.files[("L8", "20200601", "nir")] == str(tree / "L8" / "20200601_nir_v2.tif")
    assert match.unmatched == [str(tree / "S2" / "2020-06-01_red_v1.tif")]
    with pytest.raises(PatternError, match="duplicate keys"):
        find_files(str(tree / "{}" / "{date}_{band}_{}.tif"))
    with pytest.raises(PatternError, match="matches no files"):
        find_files(str(tree / "{sensor}" / "{date}.png"))


def test_ingest_with_rgb_key(tree):
    ks = store.open(tree / "db.sqlite")
    result = ks.ingest(str(tree / "{sensor}" / "{date}_{band}_{}.tif"), rgb_key="sensor", skip_metadata=True)
    assert result.keys == ("date", "band", "sensor")
    assert ks.key_names == ("date", "band", "sensor")
    assert len(result.inserted) == 6 and len(result.unmatched) == 1
    assert ("20200601", "nir", "L8") in ks.get_datasets()
    with pytest.raises(PatternError):
        ks.ingest(str(tree / "{sensor}" / "{date}_{band}_{}.tif"), rgb_key="colour")
    with pytest.raises(InvalidDatabaseError, match="has keys"):
        ks.ingest(str(tree / "{sensor}" / "{date}_{band}_{}.tif"))  # other key order


def test_cli_ingest(tree, capsys):
    db = tree / "cli.sqlite"
    code = main(["ingest", str(tree / "{sensor}" / "{date}_{band}_{}.tif"), "-o", str(db),
                 "--key-descriptions", json.dumps({"band": "spectral band"})])
    out, err = capsys.readouterr()
    assert code == 0
    assert "Ingested 6 file(s)" in out
    assert "1 file(s) matched nothing" in err and "2020-06-01_red_v1.tif" in err
    ks = store.open(db)
    assert ks.get_keys()["band"] == "spectral band"
    assert ks.get_metadata(["S2", "20200601", "red"])["range"] == ks.compute_metadata(
        tree / "S2" / "20200601_red_v1.tif")["range"]

    code = main(["ingest", str(tree / "{sensor}" / "{a-b}.tif"), "-o", str(db)])
    assert code == 2 and "Invalid key name 'a-b'" in capsys.readouterr().err
    code = main(["ingest", str(tree / "{sensor}" / "{date}_{band}_{}.tif"), "-o", str(db), "--rgb-key", "date"])
    assert code == 2 and "has keys" in capsys.readouterr().err
    code = main(["ingest", str(tree / "{x}.tif"), "-o", str(db), "--key-descriptions", "{not json"])
    assert code == 2 and "not valid JSON" in capsys.readouterr().err


def test_cli_ingest_bad_raster_exit_code(tmp_path, data, capsys):
    shutil.copy(data / "cog_gcps.tif", tmp_path / "gcps.tif")
    code = main(["ingest", str(tmp_path / "{name}.tif"), "-o", str(tmp_path / "db.sqlite"), "-q"])
    assert code == 1 and "GCP" in capsys.readouterr().err


def test_cli_optimize_rasters(tmp_path, data, capsys):
    from rio_cogeo.cogeo import cog_validate

    out = tmp_path / "out"
    code = main(["optimize-rasters", str(data / "nlcd.tif"), "-o", str(out), "-q"])
    assert code == 0
    valid, errors, _ = cog_validate(str(out / "nlcd.tif"))
    assert valid and not errors
    assert store.open(tmp_path / "x.sqlite").compute_metadata(out / "nlcd.tif")["range"] == \
        store.open(tmp_path / "x.sqlite").compute_metadata(data / "nlcd.tif")["range"]
    assert main(["optimize-rasters", str(tmp_path / "none*.tif"), "-o", str(out)]) == 2

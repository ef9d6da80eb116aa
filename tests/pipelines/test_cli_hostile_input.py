"""Hostile input through the command line: exit status 1 (2 for a scan, refused by its preflight) and one
line naming the input, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from fieldtruth.pipelines.cli import cli
from fieldtruth.tests.data.hostile import ogr_vrt, stac_catalog
from fieldtruth.tests.data.runfolder import make_run_folder
from fieldtruth.tests.data.sectors import write_declaration


def _one_error_line(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), obj={})
    assert result.exit_code == (2 if args[0] == "scan" else 1), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    return errors[0]


@pytest.mark.parametrize(("extra", "message"), [({"colour": "red"}, "unknown key 'colour'"),
                                                ({7: "x"}, "key '7' is not text")])
def test_risk_with_a_declaration_of_bad_keys(tmp_path: Path, extra: dict, message: str) -> None:
    run = tmp_path / "run"
    run.mkdir()
    path = write_declaration(tmp_path / "d.yaml", ["sites.csv"])
    document = yaml.safe_load(path.read_text())
    document.update(extra)
    path.write_text(yaml.safe_dump(document))
    assert message in _one_error_line("risk", str(run), "--sectors", str(path))


def test_risk_with_a_declaration_reaching_outside_its_folder(tmp_path: Path) -> None:
    run = make_run_folder(tmp_path / "run").path
    (tmp_path / "private.csv").write_text("zq-secret\n")
    work = tmp_path / "work"
    work.mkdir()
    decl = write_declaration(work / "d.yaml", ["../private.csv"])
    line = _one_error_line("risk", str(run), "--sectors", str(decl))
    assert "outside" in line and "zq-secret" not in line


@pytest.mark.slow
def test_scan_of_a_looping_catalogue(tmp_path: Path, quick_bundle: Path) -> None:
    root = stac_catalog(tmp_path / "stac" / "catalog.json", [("child", "./a/catalog.json")])
    stac_catalog(tmp_path / "stac" / "a" / "catalog.json", [("child", "../catalog.json")])
    line = _one_error_line("scan", "--imagery", str(root), "--detector", str(quick_bundle),
                           "--out", str(tmp_path / "out"))
    assert "links loop" in line


@pytest.mark.slow
def test_scan_with_an_aoi_that_is_an_ogr_vrt(tmp_path: Path, quick_bundle: Path, small_scene: Path) -> None:
    aoi = ogr_vrt(tmp_path / "aoi.geojson", "/vsicurl/http://169.254.169.254/latest/meta-data")
    line = _one_error_line("scan", "--imagery", str(small_scene), "--detector", str(quick_bundle),
                           "--aoi", str(aoi), "--out", str(tmp_path / "out"))
    assert "aoi.geojson" in line and "geojson" in line

"""``--allow-dir``: the folders the documents you give may name files in besides their own.

It does what ``FIELDTRUTH_ALLOW_DIRS`` does (and adds to it), for the command it is given to only: the
environment is as it was afterwards. Without it, a document naming a file elsewhere is one error line.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import rasterio
from click.testing import CliRunner, Result

from fieldtruth.ingest.guard import ALLOW_DIRS_ENV
from fieldtruth.pipelines.cli import cli
from fieldtruth.runfiles import RunFiles
from fieldtruth.tests.data.runfolder import make_run_folder
from fieldtruth.tests.data.sectors import sites_frame, write_declaration

BANDS = ("B02", "B03", "B04", "B08")


def _invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    before = os.environ.get(ALLOW_DIRS_ENV)
    result = CliRunner().invoke(cli, list(args), obj={}, env=env)
    assert os.environ.get(ALLOW_DIRS_ENV) == before, "--allow-dir must not outlive its command"
    return result


def _error_line(result: Result, exit_code: int = 1) -> str:
    assert result.exit_code == exit_code, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    return errors[0]


@pytest.fixture()
def declared_elsewhere(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A run folder, and a declaration in ``work/`` whose sites file lies in ``data/``."""
    run = make_run_folder(tmp_path / "run").path
    data = tmp_path / "data"
    data.mkdir()
    sites_frame(40, seed=2).to_csv(data / "sites.csv", index=False)
    work = tmp_path / "work"
    work.mkdir()
    return run, write_declaration(work / "d.yaml", ["../data/sites.csv"]), data


def test_risk_reads_another_folder_only_when_allowed(declared_elsewhere: tuple[Path, Path, Path]) -> None:
    run, decl, data = declared_elsewhere
    line = _error_line(_invoke("risk", str(run), "--sectors", str(decl)))
    assert "outside" in line and "--allow-dir" in line
    assert not RunFiles(run).risk.exists()
    allowed = _invoke("risk", str(run), "--sectors", str(decl), "--allow-dir", str(data))
    assert allowed.exit_code == 0, allowed.output
    assert RunFiles(run).risk.is_file()


def test_allow_dir_does_what_the_environment_variable_does(declared_elsewhere: tuple[Path, Path, Path],
                                                           tmp_path: Path) -> None:
    run, decl, data = declared_elsewhere
    other = tmp_path / "other"
    other.mkdir()
    by_env = _invoke("risk", str(run), "--sectors", str(decl), env={ALLOW_DIRS_ENV: str(data)})
    assert by_env.exit_code == 0, by_env.output
    both = _invoke("risk", str(run), "--sectors", str(decl), "--allow-dir", str(other),
                   env={ALLOW_DIRS_ENV: str(data)})  # adds to the variable, never replaces it
    assert both.exit_code == 0, both.output


@pytest.mark.parametrize("command", ["risk", "scan"])
def test_allow_dir_must_be_an_existing_folder(tmp_path: Path, command: str) -> None:
    (tmp_path / "file.txt").write_text("x")
    for given in (tmp_path / "missing", tmp_path / "file.txt"):
        args = (["risk", str(tmp_path), "--sectors", "d.yaml"] if command == "risk" else
                ["scan", "--imagery", "x", "--detector", "b", "--out", str(tmp_path / "o")])
        result = _invoke(*args, "--allow-dir", str(given))
        assert result.exit_code == 2 and "--allow-dir" in result.output, result.output


def test_risk_config_area_statistics_keep_to_its_folder(declared_elsewhere: tuple[Path, Path, Path],
                                                        tmp_path: Path) -> None:
    run, decl, data = declared_elsewhere
    stats = tmp_path / "stats"
    stats.mkdir()
    (stats / "districts.geojson").write_text(
        '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"code": "D1"}, '
        '"geometry": {"type": "Polygon", "coordinates": [[[86, 25], [88, 25], [88, 26], [86, 25]]]}}]}')
    (stats / "table.csv").write_text("code,prevalence\nD1,0.05\n")
    config = tmp_path / "work" / "risk.yaml"
    config.write_text(
        "area_stats:\n  boundaries: ../stats/districts.geojson\n  boundary_code: code\n"
        "  table: ../stats/table.csv\n  table_code: code\n"
        "  terms: {prevalence: {column: prevalence, weight: 0.5, min: 0, max: 0.1}}\n")
    args = ("risk", str(run), "--sectors", str(decl), "--config", str(config), "--allow-dir", str(data))
    line = _error_line(_invoke(*args))
    assert "area-statistics" in line and "outside" in line
    allowed = _invoke(*args, "--allow-dir", str(stats))
    assert allowed.exit_code == 0, allowed.output


def _band_vrts(scene: Path, folder: Path) -> Path:
    """A scene folder of one-band VRTs, each reading the GeoTIFF band of ``scene`` (another folder)."""
    folder.mkdir()
    for band in BANDS:
        with rasterio.open(scene / f"{band}.tif") as src:
            transform = ", ".join(str(v) for v in src.transform.to_gdal())
            (folder / f"{band}.vrt").write_text(
                f'<VRTDataset rasterXSize="{src.width}" rasterYSize="{src.height}">'
                f"<SRS>{src.crs.to_wkt()}</SRS><GeoTransform>{transform}</GeoTransform>"
                '<VRTRasterBand dataType="UInt16" band="1"><SimpleSource>'
                f'<SourceFilename relativeToVRT="0">{scene / f"{band}.tif"}</SourceFilename>'
                "<SourceBand>1</SourceBand></SimpleSource></VRTRasterBand></VRTDataset>")
    return folder


@pytest.mark.slow
def test_scan_reads_vrts_of_another_folder_when_allowed_in_its_workers_too(
        tmp_path: Path, quick_bundle: Path, small_scene: Path) -> None:
    """The local cluster's worker processes open the VRTs again: the allowance must reach them."""
    vrts = _band_vrts(small_scene, tmp_path / "vrts")
    args = ("scan", "--imagery", str(vrts), "--detector", str(quick_bundle), "--workers", "1",
            "--tile-size", "256")
    line = _error_line(_invoke(*args, "--out", str(tmp_path / "refused")), exit_code=2)  # preflight
    assert "outside" in line and "--allow-dir" in line and not (tmp_path / "refused").exists()
    result = _invoke(*args, "--out", str(tmp_path / "run"), "--allow-dir", str(small_scene))
    assert result.exit_code == 0, result.output
    assert "0 failed" in result.output
    assert RunFiles(tmp_path / "run").detections.is_file()

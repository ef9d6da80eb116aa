"""A scan that cannot work says so in seconds, in one line, with exit status 2, and writes nothing;
``--dry-run`` prints the plan and writes nothing either."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from click.testing import CliRunner, Result
from rasterio.transform import from_origin

from fieldtruth.detectors.device import resolve_precision
from fieldtruth.pipelines import dryrun
from fieldtruth.pipelines.cli import cli
from fieldtruth.pipelines.errors import PreflightError
from fieldtruth.pipelines.preflight import preflight
from fieldtruth.pipelines.scan import ScanConfig, scan
from fieldtruth.tests.data.rasters import UTM_45N, scene_folder
from fieldtruth.tests.data.safe import tree

#: An engineering CRS (a site's own grid): metres, but nowhere on the Earth.
SITE_GRID = ('LOCAL_CS["site grid",LOCAL_DATUM["site",0],UNIT["metre",1],AXIS["Easting",EAST],'
             'AXIS["Northing",NORTH]]')


def _scan(tmp_path: Path, bundle: Path, imagery: Path | str, *extra: str) -> tuple[Result, float]:
    started = time.perf_counter()
    result = CliRunner().invoke(cli, ["scan", "--imagery", str(imagery), "--detector", str(bundle),
                                      "--out", str(tmp_path / "run"), "--tile-size", "64", *extra], obj={})
    return result, time.perf_counter() - started


def _without_nir(tmp_path: Path) -> Path:
    folder = scene_folder(tmp_path / "scene", size=96)
    (folder / "B08.tif").unlink()
    return folder


def _absurd_header(tmp_path: Path) -> Path:
    """A scene whose nir file claims 130,000 columns (a few hundred bytes: no block is written)."""
    folder = scene_folder(tmp_path / "scene", size=96)
    with rasterio.open(folder / "B08.tif", "w", driver="GTiff", width=130_000, height=64, count=1,
                       dtype="uint16", crs=UTM_45N, transform=from_origin(500_000, 2_800_000, 10, 10),
                       tiled=True, blockxsize=1024, blockysize=64, sparse_ok=True):
        pass
    return folder


CASES = {
    "a missing band": (_without_nir, (), "lacks band(s) ['nir']"),
    "a CRS not on the Earth": (lambda p: scene_folder(p / "scene", size=96, crs=SITE_GRID), (),
                               "cannot be brought to WGS 84"),
    "a header claiming absurd dimensions": (_absurd_header, (), "130000 x 64 pixels"),
    "an AOI outside the imagery": (lambda p: scene_folder(p / "scene", size=96),
                                   ("--aoi", "10.0,10.0,10.1,10.1"),
                                   "AOI (10.0, 10.0, 10.1, 10.1) lies outside"),
    "pixels too coarse": (lambda p: scene_folder(p / "scene", size=96, res=30.0), (), "30 m pixels"),
    "pixels far too fine": (lambda p: scene_folder(p / "scene", size=96, res=2.0), (), "resample it to 10 m"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_scan_that_cannot_work_fails_in_seconds_in_one_line_writing_nothing(
        tmp_path: Path, quick_bundle: Path, case: str) -> None:
    make, options, expected = CASES[case]
    imagery = make(tmp_path)
    before = tree(tmp_path)
    result, seconds = _scan(tmp_path, quick_bundle, imagery, *options)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.output
    assert "Traceback" not in result.output and seconds < 5, seconds
    assert not (tmp_path / "run").exists() and tree(tmp_path) == before


def test_the_line_names_the_scene_and_the_fix(tmp_path: Path, quick_bundle: Path) -> None:
    imagery = _without_nir(tmp_path)
    with pytest.raises(PreflightError) as caught:
        scan(ScanConfig(imagery=imagery, detector=quick_bundle, out=tmp_path / "run", tile_size=64))
    assert "'scene'" in str(caught.value) and "B08 nir" in str(caught.value)
    assert not (tmp_path / "run").exists()


def test_a_missing_input_is_a_preflight_failure_too(tmp_path: Path, quick_bundle: Path) -> None:
    result, _ = _scan(tmp_path, quick_bundle, tmp_path / "nowhere")
    assert result.exit_code == 2 and "nowhere" in result.output and not (tmp_path / "run").exists()


def test_the_plan_of_a_good_scan(tmp_path: Path, quick_bundle: Path) -> None:
    folder = scene_folder(tmp_path / "scene", size=200, seed=4)
    plan = preflight(ScanConfig(imagery=folder, detector=quick_bundle, out=tmp_path / "run", tile_size=64))
    assert len(plan.grid) == 16 and plan.megapixels == pytest.approx(16 * 64 * 64 / 1e6)
    assert plan.ground_m == {"scene": 10.0} and [s.id for s in plan.scenes] == ["scene"]


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path: Path, quick_bundle: Path) -> None:
    folder = scene_folder(tmp_path / "scene", size=200, seed=4)
    before = tree(tmp_path)
    result, _ = _scan(tmp_path, quick_bundle, folder, "--dry-run", "--workers", "1")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("plan: 1 scene(s) -> 16 tiles of 64 px") and "0.1 Mpx scanned" in lines[0]
    assert any(line.startswith("scene scene: ") and "10 m on the ground" in line for line in lines)
    assert any(line.startswith("timing: one tile read in ") for line in lines)
    assert any(line.startswith("estimate: about ") and "1 local worker(s)" in line for line in lines)
    assert not (tmp_path / "run").exists() and tree(tmp_path) == before


def test_dry_run_refuses_what_a_scan_refuses(tmp_path: Path, quick_bundle: Path) -> None:
    result, _ = _scan(tmp_path, quick_bundle, _without_nir(tmp_path), "--dry-run")
    assert result.exit_code == 2 and "lacks band(s)" in result.output


def test_the_estimate_shares_tiles_out_as_a_local_scan_does() -> None:
    timing = dryrun.TileTiming(read_seconds=0.1, model_seconds=0.4)
    # a core to spare: each worker reads the next tile while the model runs
    assert dryrun.estimate_seconds(100, timing, workers=2, threads=1, cores=4) == pytest.approx(20.0)
    assert dryrun.estimate_seconds(100, timing, workers=2, threads=1, cores=2) == pytest.approx(25.0)
    assert dryrun.estimate_seconds(100, timing, workers=8, threads=2, cores=4) == pytest.approx(25.0)
    assert [dryrun.duration(s) for s in (0.42, 42, 300, 7200)] == ["0.4 s", "42 s", "5.0 min", "2.0 h"]


def test_timing_keeps_this_process_torch_threads(tmp_path: Path, quick_bundle: Path) -> None:
    import torch

    folder = scene_folder(tmp_path / "scene", size=96)
    plan = preflight(ScanConfig(imagery=folder, detector=quick_bundle, out=tmp_path / "run", tile_size=64))
    before = torch.get_num_threads()
    timing = dryrun.time_one_tile(plan, threads=1)
    assert torch.get_num_threads() == before
    assert timing.model_seconds > 0 and np.isfinite(timing.read_seconds)


def test_dry_run_of_a_catalogue_published_over_http(tmp_path: Path, quick_bundle: Path) -> None:
    from collections import Counter

    from fieldtruth.tests.data.rangeserver import serve
    from fieldtruth.tests.data.stac import published_catalog

    folders = {name: scene_folder(tmp_path / "scenes" / name, size=96, seed=seed)
               for name, seed in (("north", 1), ("south", 2))}
    published_catalog(tmp_path / "www", folders)
    with serve(tmp_path / "www") as (base, log):
        result, _ = _scan(tmp_path, quick_bundle, f"{base}/catalog.json", "--dry-run",
                          "--allow-host", base.removeprefix("http://"))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("plan: 2 scene(s)") and "scene north: " in result.output
    documents = Counter(path for path, _ in log.requests if path.endswith(".json"))
    assert set(documents.values()) == {1} and len(documents) == 4
    assert not (tmp_path / "run").exists()


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine as one without a CUDA device, whatever it has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.usefixtures("no_cuda")
def test_device_cuda_without_cuda_fails_in_one_line_writing_nothing(
        tmp_path: Path, quick_bundle: Path) -> None:
    imagery = scene_folder(tmp_path / "scene", size=96)
    before = tree(tmp_path)
    result, seconds = _scan(tmp_path, quick_bundle, imagery, "--device", "cuda")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --device cuda: no CUDA device"), result.output
    assert "--device cpu" in lines[0] and seconds < 5
    assert not (tmp_path / "run").exists() and tree(tmp_path) == before


@pytest.mark.usefixtures("no_cuda")
def test_device_auto_without_cuda_runs_on_the_cpu_and_says_so(tmp_path: Path, quick_bundle: Path) -> None:
    imagery = scene_folder(tmp_path / "scene", size=96)
    result, _ = _scan(tmp_path, quick_bundle, imagery, "--device", "auto", "--dry-run")
    assert result.exit_code == 0, result.output
    said = [line for line in result.output.splitlines() if "device auto" in line]
    assert len(said) == 1 and "no CUDA device here, running on the CPU" in said[0]
    plan = preflight(ScanConfig(imagery=imagery, detector=quick_bundle, out=tmp_path / "run", device="auto"))
    assert plan.device.device.type == "cpu" and plan.bundle.network is not None


@pytest.mark.usefixtures("no_cuda")
def test_run_json_records_the_device_asked_and_the_one_used(tmp_path: Path, quick_bundle: Path) -> None:
    imagery = scene_folder(tmp_path / "scene", size=96)
    result, _ = _scan(tmp_path, quick_bundle, imagery, "--device", "auto")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["device"] == {"asked": "auto", "used": "cpu"}
    assert record["precision"] == {"asked": "auto", "used": resolve_precision("auto", torch.device("cpu"))}


@pytest.mark.usefixtures("no_cuda")
def test_precision_asked_for_is_the_one_the_workers_use(tmp_path: Path, quick_bundle: Path) -> None:
    imagery = scene_folder(tmp_path / "scene", size=96)
    result, _ = _scan(tmp_path, quick_bundle, imagery, "--precision", "auto")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "run.json").read_text())["precision"] == {
        "asked": "auto", "used": resolve_precision("auto", torch.device("cpu"))}
    assert preflight(ScanConfig(imagery=imagery, detector=quick_bundle, out=tmp_path / "r2",
                                precision="bfloat16")).bundle.precision == "bfloat16"

"""Scans with a detector whose card asks for per-scene water-level offsets."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio

from fieldtruth.detectors.bundle import load_bundle, save_bundle
from fieldtruth.detectors.sceneoffset import WATER_OFFSET
from fieldtruth.imagery.errors import ImageryReadError
from fieldtruth.pipelines.errors import RunFolderError
from fieldtruth.pipelines.scan import ScanConfig, scan
from fieldtruth.tests.data.rasters import scene_folder, truncated_copy
from fieldtruth.tests.data.stac import static_catalog

pytestmark = pytest.mark.slow

HAZE = {"B02.tif": 2500, "B03.tif": 1800, "B04.tif": 1200, "B08.tif": 900}


@pytest.fixture(scope="module")
def offset_bundle(quick_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The quick detector, its card asking for water-level offsets."""
    bundle = load_bundle(quick_bundle)
    path = tmp_path_factory.mktemp("offset-bundle") / "offset.safetensors"
    save_bundle(path, bundle.model, dataclasses.replace(bundle.card, scene_offset=dict(WATER_OFFSET), weights_sha256=""))
    return path


def hazy_copy(source: Path, target: Path, scale: float = 1.0) -> Path:
    """The scene folder with a uniform haze added to each band."""
    target.mkdir(parents=True, exist_ok=True)
    for name, haze in HAZE.items():
        with rasterio.open(source / name) as src:
            data, profile = src.read(1).astype(np.int64), src.profile
        with rasterio.open(target / name, "w", **profile) as dst:
            dst.write((data + int(haze * scale)).astype(profile["dtype"]), 1)
    return target


def _config(imagery: Path, bundle: Path, out: Path, **extra: object) -> ScanConfig:
    return ScanConfig(imagery=imagery, detector=bundle, out=out, tile_size=256, workers=1, **extra)


def test_a_hazy_scene_is_scanned_as_the_clear_one_and_a_changed_scene_cannot_be_resumed(
    small_scene: Path, offset_bundle: Path, tmp_path: Path,
) -> None:
    hazy = hazy_copy(small_scene, tmp_path / "hazy")
    clear_run, hazy_run = scan(_config(small_scene, offset_bundle, tmp_path / "clear-run")), scan(
        _config(hazy, offset_bundle, tmp_path / "hazy-run"))
    assert clear_run.done == hazy_run.done == 9 and not clear_run.scenes_left_out
    found = [gpd.read_parquet(r.run_dir / "detections.parquet") for r in (clear_run, hazy_run)]
    assert len(found[0]) > 0
    assert found[0].score.tolist() == found[1].score.tolist()
    assert found[0].geometry.geom_equals_exact(found[1].geometry, tolerance=1e-9).all()
    offsets = [json.loads((r.run_dir / "run.json").read_text())["inputs"]["scenes"][0]["band_offsets"]
               for r in (clear_run, hazy_run)]
    assert {b: offsets[0][b] - offsets[1][b] for b in offsets[0]} == pytest.approx(
        {"blue": 2500, "green": 1800, "red": 1200, "nir": 900})
    plan = json.loads((hazy_run.run_dir / "scan-plan.json").read_text())
    assert plan["band_offsets"]["hazy"] == offsets[1]

    hazy_copy(small_scene, hazy, scale=1.5)  # the scene's files rewritten between the scan and its resume
    before = sorted(p.name for p in (hazy_run.run_dir / "tiles").iterdir())
    with pytest.raises(RunFolderError, match="band_offsets: started with"):
        scan(_config(hazy, offset_bundle, hazy_run.run_dir, resume=True))
    assert sorted(p.name for p in (hazy_run.run_dir / "tiles").iterdir()) == before


def test_a_scene_whose_offsets_cannot_be_read_is_left_out_and_reported(
    offset_bundle: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    west = scene_folder(tmp_path / "west", size=256, seed=2)
    east = scene_folder(tmp_path / "east", size=256, seed=1, origin=(502_560.0, 2_800_000.0))
    truncated_copy(east / "B08.tif", east / "B08.tif.part", keep_fraction=0.3)
    (east / "B08.tif.part").replace(east / "B08.tif")
    catalog = static_catalog(tmp_path / "stac", {"west": west, "east": east})
    said: list[str] = []
    summary = scan(_config(catalog, offset_bundle, tmp_path / "run"), progress=said.append)
    assert [s.scene_id for s in summary.scenes_left_out] == ["east"]
    # these generated scenes are all land (brighter in nir than in green): the scan says so
    assert any("WARNING" in m and "not water (west)" in m for m in said)
    assert not [r for r in caplog.records if "not water" in r.getMessage()]  # said once, not logged as well
    assert "B08.tif" in summary.scenes_left_out[0].error
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert [s["scene_id"] for s in meta["scenes_left_out"]] == ["east"]
    assert [s["id"] for s in meta["inputs"]["scenes"]] == ["west"]
    coverage = gpd.read_parquet(tmp_path / "run" / "coverage.parquet")
    assert summary.done == len(coverage) == 2 and not summary.failed  # west's tile scanned, east's empty
    assert coverage.sort_values("tile_id").valid_fraction.round(6).tolist() == [1.0, 0.0]


def test_a_scan_whose_only_scene_cannot_be_read_stops_before_writing(offset_bundle: Path, tmp_path: Path) -> None:
    broken = scene_folder(tmp_path / "broken", size=256)
    truncated_copy(broken / "B08.tif", broken / "B08.part", keep_fraction=0.3)
    (broken / "B08.part").replace(broken / "B08.tif")
    with pytest.raises(ImageryReadError, match="B08.tif"):
        scan(_config(broken, offset_bundle, tmp_path / "run"))
    assert not (tmp_path / "run").exists()

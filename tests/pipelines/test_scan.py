"""The scan on a local Dask cluster: the run folder, failures of single tiles, and resuming."""

from __future__ import annotations

import json
import os
from pathlib import Path

import geopandas as gpd
import pytest
import rasterio

from fieldtruth.imagery.target import grid_for_scene
from fieldtruth.ingest.provenance import file_sha256
from fieldtruth.ingest.scene import open_scene
from fieldtruth.pipelines.errors import RunFolderError
from fieldtruth.pipelines.scan import ScanConfig, scan
from fieldtruth.pipelines.tileresult import load_tile_results
from fieldtruth.review.ledger import Ledger
from fieldtruth.runfiles import RunFiles
from fieldtruth.tests.data.rasters import scene_folder, truncated_copy

pytestmark = pytest.mark.slow


def _config(scene: Path, bundle: Path, out: Path, **extra: object) -> ScanConfig:
    return ScanConfig(imagery=scene, detector=bundle, out=out, tile_size=256, workers=1, **extra)


@pytest.fixture(scope="module")
def run(small_scene: Path, quick_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "run"
    summary = scan(_config(small_scene, quick_bundle, out))
    assert summary.tiles == 9 and summary.done == 9 and not summary.failed
    return out


def test_run_folder_holds_detections_coverage_ledger_and_provenance(
    run: Path, small_scene: Path, quick_bundle: Path
) -> None:
    detections = gpd.read_parquet(run / "detections.parquet")
    assert detections.crs.to_epsg() == 4326
    assert {
        "site_id",
        "label",
        "score",
        "scene_id",
        "acquired",
        "detector",
        "bundle_sha256",
        "tile_id",
    } <= set(detections.columns)
    assert detections.site_id.is_unique
    scene = open_scene(small_scene)
    with rasterio.Env():
        footprint = (
            gpd.GeoSeries.from_xy(
                [scene.bounds.left, scene.bounds.right],
                [scene.bounds.bottom, scene.bounds.top],
                crs=scene.crs,
            )
            .to_crs(4326)
            .total_bounds
        )
    if len(detections):
        assert detections.total_bounds[0] >= footprint[0] and detections.total_bounds[2] <= footprint[2]
    coverage = gpd.read_parquet(run / "coverage.parquet")
    assert len(coverage) == 9 and set(coverage.status) == {"covered"}
    meta = json.loads((run / "run.json").read_text())
    assert meta["detector"]["sha256"] == file_sha256(quick_bundle)
    hashes = {p["href"]: p["sha256"] for p in meta["inputs"]["scenes"][0]["provenance"]}
    assert hashes[str((small_scene / "B04.tif").resolve())] == file_sha256(small_scene / "B04.tif")
    assert meta["tiles"] == {"total": 9, "ok": 9, "failed": 0, "skipped_on_resume": 0}
    work = meta["tile_work_seconds"]
    assert set(work) == {"read", "wait", "model"} and work["read"] > 0 and work["model"] > 0
    with Ledger.open(run / "review.sqlite") as ledger:
        statuses = ledger.statuses()
    assert set(statuses) == set(detections.site_id)
    assert set(statuses.values()) <= {"unverified"}


def test_detections_lie_in_exactly_one_tile_core(run: Path, small_scene: Path) -> None:
    detections = gpd.read_parquet(run / "detections.parquet")
    grid = grid_for_scene(open_scene(small_scene), tile_size=256, halo=32)
    points = detections.to_crs(grid.crs)
    for tile_id, point in zip(points.tile_id, points.geometry, strict=True):
        owners = [t.id for t in grid if t.in_core(point.x, point.y)]
        assert owners == [tile_id]


def test_a_second_scan_into_the_same_folder_needs_resume(
    run: Path, small_scene: Path, quick_bundle: Path
) -> None:
    with pytest.raises(RunFolderError, match="--resume"):
        scan(_config(small_scene, quick_bundle, run))


def test_resume_redoes_only_missing_tiles_and_gives_the_same_output(
    run: Path, small_scene: Path, quick_bundle: Path, tmp_path: Path
) -> None:
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    tiles = sorted((copy / "tiles").glob("*.json"))
    removed = tiles[:4]
    for path in removed:
        path.unlink()
    kept = {p: os.stat(p).st_mtime_ns for p in tiles[4:]}
    summary = scan(_config(small_scene, quick_bundle, copy, resume=True, performance_report=True))
    assert summary.skipped == 5 and summary.done == 9
    assert "Dask Performance Report" in (copy / "dask-performance-report.html").read_text(encoding="utf-8")
    assert {p: os.stat(p).st_mtime_ns for p in kept} == kept, "finished tiles must not be redone"
    before = gpd.read_parquet(run / "detections.parquet")
    after = gpd.read_parquet(copy / "detections.parquet")
    assert before.drop(columns=["geometry", "site_id"]).equals(after.drop(columns=["geometry", "site_id"]))
    assert before.geometry.geom_equals_exact(after.geometry, tolerance=0).all()
    redone = {p.stem for p in removed}
    kept_rows = ~before.tile_id.isin(redone)
    assert kept_rows.any()
    assert (before.site_id[kept_rows] == after.site_id[kept_rows]).all(), "ids of finished tiles"


def test_a_truncated_band_fails_its_tiles_alone(quick_bundle: Path, tmp_path: Path) -> None:
    whole = scene_folder(tmp_path / "whole", size=640)  # 64 px blocks stored row by row
    broken = scene_folder(tmp_path / "broken", size=640)
    truncated_copy(whole / "B08.tif", broken / "B08.tif", keep_fraction=0.6)
    summary = scan(_config(broken, quick_bundle, tmp_path / "run"))
    assert summary.failed, "tiles over the missing bytes must fail"
    assert summary.done + len(summary.failed) == 9 and summary.done > 0
    assert all("B08.tif" in f.error for f in summary.failed)
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert {f["tile_id"] for f in meta["failed_tiles"]} == {f.tile_id for f in summary.failed}
    coverage = gpd.read_parquet(tmp_path / "run" / "coverage.parquet")
    assert set(coverage.loc[coverage.status == "failed", "tile_id"]) == {f.tile_id for f in summary.failed}


@pytest.mark.parametrize(("tile_size", "tiles"), [(1024, 1), (None, 4)])
def test_tiling_neither_loses_nor_doubles_sites(
    run: Path,
    small_scene: Path,
    quick_bundle: Path,
    tmp_path: Path,
    tile_size: int | None,
    tiles: int,
) -> None:
    """Small tiles (many core boundaries) find the same sites as one tile over the whole scene, and as the
    cores a scan chooses from the detector's receptive field (512 px here: 2 x 2 tiles)."""
    whole = scan(
        ScanConfig(
            imagery=small_scene, detector=quick_bundle, out=tmp_path / "whole", tile_size=tile_size, workers=1
        )
    )
    assert whole.tiles == tiles
    tiled = gpd.read_parquet(run / "detections.parquet")
    single = gpd.read_parquet(tmp_path / "whole" / "detections.parquet")
    assert len(tiled) == len(single) > 0

    def places(frame: gpd.GeoDataFrame) -> set[tuple[str, float, float]]:
        return {(lb, round(g.x, 7), round(g.y, 7)) for lb, g in zip(frame.label, frame.geometry, strict=True)}

    assert places(tiled) == places(single)
    assert not set(tiled.site_id) & set(single.site_id), "site ids are random per run, not from places"


def test_a_run_folder_drops_temporary_files_a_killed_writer_left(tmp_path: Path) -> None:
    from fieldtruth.atomicfile import write_text
    from fieldtruth.pipelines.runfolder import RunFolder

    run = RunFolder(tmp_path / "run").create()
    write_text(run.tile_result("r0000c0000"), "{}")
    stale = [run.tiles / ".r0000c0001.json.abc123.tmp", run.root / ".run.json.xyz.tmp"]
    for path in stale:
        path.write_text("half a file")
    run.create()
    assert not any(path.exists() for path in stale)
    assert run.tile_result("r0000c0000").read_text() == "{}"


def test_a_tile_result_is_in_the_manifest_before_its_file_appears(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fieldtruth.pipelines.runfolder import RunFolder
    from fieldtruth.pipelines.tileresult import TileResult

    run = RunFolder(tmp_path / "run").create()
    record, file_there = RunFolder.record_in_manifest, []

    def recording(self: RunFolder, result: TileResult) -> None:
        file_there.append(self.tile_result(result.tile_id).exists())
        record(self, result)

    monkeypatch.setattr(RunFolder, "record_in_manifest", recording)
    run.write_tile_result(TileResult("r0000c0000"))
    assert file_there == [False]  # a kill between the two leaves a line to redo, never a file without one
    assert json.loads(run.tile_result("r0000c0000").read_text())["status"] == "ok"
    assert [json.loads(x)["tile_id"] for x in run.manifest.read_text().splitlines()] == ["r0000c0000"]


def test_tiles_read_in_blocks_or_alone_give_the_same_detections(
    run: Path, small_scene: Path, quick_bundle: Path, tmp_path: Path
) -> None:
    in_blocks = scan(_config(small_scene, quick_bundle, tmp_path / "blocks", block=2))
    assert in_blocks.tiles == 9
    assert json.loads((run / "scan-plan.json").read_text())["block"] == 1, (
        "9 tiles: too few for blocks by default"
    )
    assert json.loads((tmp_path / "blocks" / "scan-plan.json").read_text())["block"] == 2
    blocks = gpd.read_parquet(tmp_path / "blocks" / "detections.parquet")
    tiles = gpd.read_parquet(run / "detections.parquet")
    assert len(blocks) > 0
    assert blocks.drop(columns=["geometry", "site_id"]).equals(tiles.drop(columns=["geometry", "site_id"]))


def test_blocks_handed_out_in_turn_instead_of_bands_give_the_same_detections(
    run: Path,
    small_scene: Path,
    quick_bundle: Path,
    tmp_path: Path,
) -> None:
    in_turn = scan(_config(small_scene, quick_bundle, tmp_path / "turns", worker_bands=False))
    assert in_turn.done == 9
    turns = gpd.read_parquet(tmp_path / "turns" / "detections.parquet")
    other = gpd.read_parquet(run / "detections.parquet")
    assert turns.drop(columns=["geometry", "site_id"]).equals(other.drop(columns=["geometry", "site_id"]))


@pytest.mark.parametrize("changed", [{"block": 2}, {"tile_size": 128}, {"halo": 40}])
def test_a_resume_with_other_tiles_is_refused_and_keeps_the_run(
    run: Path,
    small_scene: Path,
    quick_bundle: Path,
    tmp_path: Path,
    changed: dict[str, int],
) -> None:
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    before = {p.name: p.read_bytes() for p in (copy / "tiles").iterdir()}
    settings = {"tile_size": 256, **changed}
    with pytest.raises(RunFolderError, match=f"{next(iter(changed))}: started with"):
        scan(
            ScanConfig(
                imagery=small_scene, detector=quick_bundle, out=copy, workers=1, resume=True, **settings
            )
        )
    assert {p.name: p.read_bytes() for p in (copy / "tiles").iterdir()} == before
    assert json.loads((copy / "scan-plan.json").read_text())["block"] == 1


def test_a_resume_with_other_imagery_on_the_same_grid_is_refused(
    run: Path,
    small_scene: Path,
    quick_bundle: Path,
    tmp_path: Path,
) -> None:
    """Before the plan recorded the scenes, these resumes were accepted, and the finished tiles' leads were
    merged under the other imagery's scene id."""
    import shutil

    import numpy as np

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    next(iter(sorted((copy / "tiles").glob("r*.json")))).unlink()
    before = (copy / "detections.parquet").read_bytes()
    later = tmp_path / "later"  # the same grid, other pixels (a later acquisition), same scene id
    shutil.copytree(small_scene, later)
    with rasterio.open(later / "B04.tif", "r+", IGNORE_COG_LAYOUT_BREAK="YES") as band:
        band.write((band.read(1).astype(np.int32) * 11 // 10).astype(band.dtypes[0]), 1)
    with pytest.raises(RunFolderError, match=r"scenes: the files of \['synthetic-seed7-640'\]"):
        scan(_config(later, quick_bundle, copy, resume=True))
    renamed = tmp_path / "renamed"  # the same grid, another scene id
    shutil.copytree(later, renamed)
    meta = json.loads((renamed / "scene.json").read_text())
    (renamed / "scene.json").write_text(json.dumps({**meta, "id": "S2B_LATER"}))
    with pytest.raises(RunFolderError, match="scenes: started with"):
        scan(_config(renamed, quick_bundle, copy, resume=True))
    assert (copy / "detections.parquet").read_bytes() == before
    plan = json.loads((copy / "scan-plan.json").read_text())
    assert [s["id"] for s in plan["scenes"]] == ["synthetic-seed7-640"]
    assert all("sha256" in f for f in plan["scenes"][0]["files"])
    summary = scan(_config(small_scene, quick_bundle, copy, resume=True))  # the same imagery still resumes
    assert summary.skipped == 8 and summary.done == 9


def test_tile_results_carry_random_site_ids_that_merges_reuse(run: Path) -> None:
    detections = gpd.read_parquet(run / "detections.parquet")
    results = load_tile_results(RunFiles(run).tiles).values()
    stamped = {d.site_id for result in results for d in result.detections}
    assert set(detections.site_id) <= stamped
    assert all(len(s) == 17 and s.startswith("S") for s in detections.site_id)

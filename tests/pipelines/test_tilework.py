"""Tile work on a worker: the model slot is held only while the model runs, so reads overlap it."""

from __future__ import annotations

import os
from pathlib import Path

import dask.config
import pytest

from fieldtruth.detectors.bundle import load_bundle
from fieldtruth.imagery.target import grid_for_scene
from fieldtruth.ingest.scene import open_scene
from fieldtruth.pipelines import tilework
from fieldtruth.pipelines.scan import ScanConfig
from fieldtruth.pipelines.scancluster import QUIET_CLUSTER, cluster_client
from fieldtruth.pipelines.tilework import (
    allocator_environ,
    detect_block,
    detect_tile,
    local_workers,
    model_slots,
    worker_threads_for,
)
from fieldtruth.tests.data.rasters import scene_folder, truncated_copy


class RecordingSlot:
    """A context manager that records when it is held."""

    def __init__(self) -> None:
        self.held = False
        self.entries = 0

    def __enter__(self) -> None:
        self.held = True
        self.entries += 1

    def __exit__(self, *exc: object) -> None:
        self.held = False


@pytest.mark.parametrize(
    ("task_threads", "torch_threads", "slots"),
    [(1, 1, 1), (2, 1, 1), (3, 1, 2), (3, 2, 1), (5, 2, 2), (1, 4, 1)],
)
def test_one_task_thread_is_kept_for_reading(task_threads: int, torch_threads: int, slots: int) -> None:
    assert model_slots(task_threads, torch_threads) == slots


@pytest.mark.parametrize(
    ("workers", "torch_threads", "cores", "task_threads"),
    [(1, 1, 2, 2), (2, 1, 2, 1), (2, 1, 4, 2), (1, 2, 2, 2), (1, 4, 8, 5), (4, 2, 8, 2)],
)
def test_a_local_worker_reads_ahead_only_on_a_core_the_models_leave_free(
    workers: int,
    torch_threads: int,
    cores: int,
    task_threads: int,
) -> None:
    assert worker_threads_for(torch_threads, workers, cores) == task_threads
    assert model_slots(task_threads, torch_threads) == 1


def test_the_slot_is_held_for_the_model_and_not_for_the_read(
    small_scene: Path,
    quick_bundle: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bundle = load_bundle(quick_bundle)
    scene = open_scene(small_scene)
    tile = next(iter(grid_for_scene(scene, resolution=bundle.card.gsd_m, tile_size=256, halo=40)))
    slot = RecordingSlot()
    real_read, real_detect = tilework.read_mosaic, tilework.detect_array
    held_during: dict[str, bool] = {}

    def read(*args: object, **kwargs: object) -> object:
        held_during["read"] = slot.held
        return real_read(*args, **kwargs)

    def detect(*args: object, **kwargs: object) -> object:
        held_during["model"] = slot.held
        return real_detect(*args, **kwargs)

    monkeypatch.setattr(tilework, "read_mosaic", read)
    monkeypatch.setattr(tilework, "detect_array", detect)
    with_slot = detect_tile(bundle, [scene], tile, model_slot=slot)
    assert held_during == {"read": False, "model": True} and slot.entries == 1 and not slot.held
    without = detect_tile(bundle, [scene], tile)
    assert with_slot.detections == without.detections and with_slot.status == "ok"
    assert with_slot.read_seconds > 0 and with_slot.model_seconds > 0 and with_slot.wait_seconds >= 0


def test_a_tile_that_cannot_be_read_never_takes_a_model_slot(quick_bundle: Path, tmp_path: Path) -> None:
    whole = scene_folder(tmp_path / "whole", size=320)
    broken = scene_folder(tmp_path / "broken", size=320)
    truncated_copy(whole / "B08.tif", broken / "B08.tif", keep_fraction=0.3)
    bundle = load_bundle(quick_bundle)
    scene = open_scene(broken)
    tile = list(grid_for_scene(scene, resolution=bundle.card.gsd_m, tile_size=320, halo=40))[-1]
    slot = RecordingSlot()
    result = detect_tile(bundle, [scene], tile, model_slot=slot)
    assert result.status == "failed" and "B08.tif" in result.error
    assert slot.entries == 0


def test_a_block_is_read_once_and_detects_as_its_tiles_would_alone(
    small_scene: Path,
    quick_bundle: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bundle = load_bundle(quick_bundle)
    scene = open_scene(small_scene)
    grid = grid_for_scene(scene, resolution=bundle.card.gsd_m, tile_size=256, halo=40)  # 3 x 3 tiles
    block = grid.blocks(2)[0]
    assert len(block.tiles) == 4
    slot = RecordingSlot()
    reads: list[str] = []
    real_read, real_detect = tilework.read_block, tilework.detect_array
    held_during: list[bool] = []

    def read(scenes: object, block: object, *args: object) -> object:
        reads.append(block.window.id)
        held_during.append(slot.held)
        return real_read(scenes, block, *args)

    def detect(*args: object, **kwargs: object) -> object:
        held_during.append(slot.held)
        return real_detect(*args, **kwargs)

    monkeypatch.setattr(tilework, "read_block", read)
    monkeypatch.setattr(tilework, "detect_array", detect)
    results = detect_block(bundle, [scene], block, model_slot=slot)
    assert reads == [block.window.id] and held_during == [False, True, True, True, True] and slot.entries == 1
    monkeypatch.undo()
    alone = [detect_tile(bundle, [scene], tile) for tile in block.tiles]
    assert [r.tile_id for r in results] == [t.id for t in block.tiles]
    assert [r.detections for r in results] == [r.detections for r in alone]
    assert sum(len(r.detections) for r in results) > 0
    assert all(r.status == "ok" and r.read_seconds > 0 and r.model_seconds > 0 for r in results)


def test_a_blocks_tiles_in_one_batch_give_the_detections_of_tiles_alone(
    small_scene: Path,
    quick_bundle: Path,
) -> None:
    """The GPU path (a block's tiles through the model together), run on the CPU."""
    bundle = load_bundle(quick_bundle)
    scene = open_scene(small_scene)
    grid = grid_for_scene(scene, resolution=bundle.card.gsd_m, tile_size=256, halo=40)  # 3 x 3 tiles
    found = 0
    for block in grid.blocks(2):  # whole blocks of 4 tiles, and blocks cut short at the edges
        batched = detect_block(bundle, [scene], block, batch=4)
        found += sum(len(r.detections) for r in batched)
        alone = detect_block(bundle, [scene], block)
        assert [r.tile_id for r in batched] == [r.tile_id for r in alone]
        for a, b in zip(batched, alone, strict=True):
            assert [(d.x, d.y, d.label) for d in a.detections] == [(d.x, d.y, d.label) for d in b.detections]
            assert [d.score for d in a.detections] == pytest.approx([d.score for d in b.detections], abs=1e-5)
            assert a.model_seconds > 0 and a.valid_fraction == b.valid_fraction
    assert found > 0


def test_a_block_that_cannot_be_read_whole_fails_only_its_unreadable_tiles(
    quick_bundle: Path, tmp_path: Path
) -> None:
    whole = scene_folder(tmp_path / "whole", size=512)
    broken = scene_folder(tmp_path / "broken", size=512)
    truncated_copy(whole / "B08.tif", broken / "B08.tif", keep_fraction=0.6)  # the bottom rows are lost
    bundle = load_bundle(quick_bundle)
    scene = open_scene(broken)
    grid = grid_for_scene(scene, resolution=bundle.card.gsd_m, tile_size=128, halo=8)  # 4 x 4 tiles
    results = [r for block in grid.blocks(4) for r in detect_block(bundle, [scene], block)]
    failed = [r for r in results if r.status == "failed"]
    assert len(results) == 16 and 0 < len(failed) < 16
    assert all("B08.tif" in r.error for r in failed)
    assert results[0].status == "ok", "the top-left tile's pixels are intact"


def _environ_of_interest() -> dict[str, str | None]:
    return {name: os.environ.get(name) for name in [*allocator_environ(), "OMP_NUM_THREADS"]}


@pytest.mark.slow
def test_local_workers_start_with_the_allocator_settings_and_dasks_own(tmp_path: Path) -> None:
    config = ScanConfig(
        imagery=tmp_path, detector=tmp_path / "unused.safetensors", out=tmp_path / "run", workers=2
    )
    with cluster_client(config, lambda message: None) as client:
        seen = client.run(_environ_of_interest)
        quiet = client.run(lambda: {key: dask.config.get(key) for key in QUIET_CLUSTER})
    assert len(seen) == 2
    for environ in seen.values():
        assert environ == {**allocator_environ(), "OMP_NUM_THREADS": "1"}
    assert list(quiet.values()) == [QUIET_CLUSTER] * 2, "Dask's monitors would take CPU from the model"
    assert dask.config.get("distributed.worker.profile.enabled"), "the setting outlived the scan"
    assert "MALLOC_ARENA_MAX" not in dask.config.get("distributed.nanny.pre-spawn-environ"), (
        "the setting outlived the scan"
    )


@pytest.mark.parametrize(("workers", "cores", "task_threads"),
                         [(1, 1, 2), (1, 2, 2), (1, 16, 16), (4, 16, 4), (3, 16, 5), (4, 4, 2)])
def test_gpu_workers_share_every_core_between_them(workers: int, cores: int, task_threads: int) -> None:
    assert worker_threads_for(1, workers, cores, gpu=True) == task_threads


GIB = 1 << 30


@pytest.mark.parametrize(
    ("asked", "gpu", "cores", "gpu_memory", "workers"),
    [
        (None, False, 16, None, 2),  # the CPU's default, whatever the cores
        (3, False, 2, None, 3),  # asked for: as asked
        (1, True, 16, 141 * GIB, 1),
        (None, True, 16, 141 * GIB, 4),  # a GPU: one per 4 cores
        (None, True, 32, 141 * GIB, 8),
        (None, True, 16, 8 * GIB, 2),  # as many as its memory holds
        (None, True, 2, 141 * GIB, 1),  # never none
        (None, True, 16, 2 * GIB, 1),
    ],
)
def test_local_workers_default_to_two_on_the_cpu_and_to_cores_and_memory_on_a_gpu(
    asked: int | None, gpu: bool, cores: int, gpu_memory: int | None, workers: int,
) -> None:
    assert local_workers(asked, gpu, cores, gpu_memory) == workers

"""Tile work on a worker: the model slot is held only while the model runs, so reads overlap it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fieldtruth.detectors.bundle import load_bundle
from fieldtruth.imagery.target import grid_for_scene
from fieldtruth.ingest.scene import open_scene
from fieldtruth.pipelines import tilework
from fieldtruth.pipelines.tilework import detect_tile, model_slots, worker_threads_for
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


@pytest.mark.parametrize(("task_threads", "torch_threads", "slots"), [(1, 1, 1), (2, 1, 1), (3, 1, 2), (3, 2, 1), (5, 2, 2), (1, 4, 1)])
def test_one_task_thread_is_kept_for_reading(task_threads: int, torch_threads: int, slots: int) -> None:
    assert model_slots(task_threads, torch_threads) == slots


def test_a_local_worker_gets_one_model_slot_and_one_reader() -> None:
    for torch_threads in (1, 2, 4):
        assert model_slots(worker_threads_for(torch_threads), torch_threads) == 1


def test_the_slot_is_held_for_the_model_and_not_for_the_read(
    small_scene: Path, quick_bundle: Path, monkeypatch: pytest.MonkeyPatch,
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
    assert with_slot["detections"] == without["detections"] and with_slot["status"] == "ok"
    assert with_slot["read_seconds"] > 0 and with_slot["model_seconds"] > 0 and with_slot["wait_seconds"] >= 0


def test_a_tile_that_cannot_be_read_never_takes_a_model_slot(quick_bundle: Path, tmp_path: Path) -> None:
    whole = scene_folder(tmp_path / "whole", size=320)
    broken = scene_folder(tmp_path / "broken", size=320)
    truncated_copy(whole / "B08.tif", broken / "B08.tif", keep_fraction=0.3)
    bundle = load_bundle(quick_bundle)
    scene = open_scene(broken)
    tile = list(grid_for_scene(scene, resolution=bundle.card.gsd_m, tile_size=320, halo=40))[-1]
    slot = RecordingSlot()
    result = detect_tile(bundle, [scene], tile, model_slot=slot)
    assert result["status"] == "failed" and "B08.tif" in result["error"]
    assert slot.entries == 0

"""The run folder's files: one name each, written down in the layout the module documents."""

from __future__ import annotations

from pathlib import Path

from fieldtruth import runfiles
from fieldtruth.pipelines.runfolder import RunFolder
from fieldtruth.runfiles import RunFiles

NAMES = {k: v for k, v in vars(runfiles).items() if k.isupper() and isinstance(v, str)}


def test_every_name_is_distinct_and_in_the_documented_layout() -> None:
    assert len(set(NAMES.values())) == len(NAMES) >= 15
    layout = runfiles.__doc__ or ""
    assert not [n for n in NAMES.values() if n not in layout]


def test_paths_of_a_run_folder() -> None:
    files = RunFiles(Path("runs/a"))
    assert files.detections == Path("runs/a/detections.parquet")
    assert files.manifest == Path("runs/a/tiles/manifest.jsonl")
    assert files.tile_result("r0001c0002") == Path("runs/a/tiles/r0001c0002.json")
    assert files.leads_map("shared") == Path("runs/a/maps/leads_shared.html")
    assert files.chip("S0123") == Path("runs/a/chips/S0123.png")
    assert files.map_keys == Path("runs/a/map_keys.json")


def test_the_scan_writes_the_same_paths() -> None:
    assert RunFolder(Path("r")).ledger == RunFiles(Path("r")).ledger == Path("r/review.sqlite")

"""Progress of long work: a bar on a terminal, periodic lines with counts and time left elsewhere."""

from __future__ import annotations

import logging
import time

import pytest
from rasterio.coords import BoundingBox

from fieldtruth.imagery.grid import Tile
from fieldtruth.pipelines.progress import (
    INTERVAL_ENV,
    Progress,
    TileProgress,
    TrainingProgress,
    evaluation_progress,
    interval_from_env,
)
from fieldtruth.pipelines.tileresult import FAILED, TileDetection, TileResult


def _tile(i: int) -> Tile:
    core = BoundingBox(i * 2560.0, 0.0, (i + 1) * 2560.0, 2560.0)  # 256 x 256 px at 10 m
    return Tile(f"r0000c{i:04d}", 0, i, core, core, "EPSG:32645", 10.0)


def test_without_a_terminal_a_line_is_written_at_each_tenth_with_counts() -> None:
    said: list[str] = []
    with Progress("scan", 20, "tile", say=said.append, interactive=False, interval_s=3600) as progress:
        for _ in range(20):
            progress.update(1, failed=0)
    assert [line.split(" ")[1] for line in said] == ["1/20"] + [f"{2 * k}/20" for k in range(1, 11)]
    assert said[1].startswith("scan: 2/20 tiles (10%); failed 0; ") and "elapsed, about" in said[1]
    assert said[-1].startswith("scan: 20/20 tiles (100%)") and "left" not in said[-1]


def test_without_a_terminal_a_line_is_written_every_interval_when_work_is_slow() -> None:
    said: list[str] = []
    with Progress("evaluate", 1000, "scene", say=said.append, interactive=False, interval_s=0.05) as progress:
        progress.update(1)
        time.sleep(0.4)
    assert len(said) >= 2, said
    assert all(line.startswith("evaluate: 1/1,000 scenes (0%)") for line in said)
    assert "about" in said[-1] and "left" in said[-1]


def test_on_a_terminal_a_bar_is_drawn_and_no_line_is_said(capsys: pytest.CaptureFixture[str]) -> None:
    said: list[str] = []
    with Progress("scan", 4, "tile", say=said.append, interactive=True, interval_s=0.01) as progress:
        for _ in range(4):
            progress.update(1, leads=3)
    assert said == []
    assert "4/4" in capsys.readouterr().err


def test_tile_progress_counts_failures_leads_and_megapixels() -> None:
    said: list[str] = []
    tiles = [_tile(i) for i in range(10)]
    found = (TileDetection(1.0, 2.0, 0.9, "kiln"), TileDetection(3.0, 4.0, 0.8, "kiln"))
    with TileProgress(tiles, said.append, interactive=False, interval_s=3600) as progress:
        for tile in tiles[:9]:
            progress.tile_done(TileResult(tile.id, valid_fraction=1.0, detections=found))
        progress.tile_done(TileResult(tiles[9].id, status=FAILED, error="OSError: truncated"))
    assert progress.failed == 1 and progress.leads == 18
    assert said[-1].startswith("scan: 10/10 tiles (100%); failed 1; leads 18; rate ")
    assert said[-1].split("; ")[3].endswith(" Mpx/s")


def test_training_progress_shows_steps_and_loss_and_starts_again_for_each_member() -> None:
    said: list[str] = []
    with TrainingProgress(said.append, interactive=False, interval_s=3600) as progress:
        for member in range(2):
            for step in range(1, 11):
                progress(step, 10, 1.0 / step + member)
    assert [line.split(";")[0] for line in said[:2]] == ["train: 1/10 steps (10%)", "train: 2/10 steps (20%)"]
    assert said[9].startswith("train: 10/10 steps (100%); loss 0.1000")
    assert said[10].startswith("train: 1/10 steps (10%); loss 2.0000"), "a second member counts from 1"


def test_a_resumed_training_counts_from_where_it_was() -> None:
    said: list[str] = []
    with TrainingProgress(said.append, interactive=False, interval_s=3600) as progress:
        for step in range(51, 101):
            progress(step, 100, 0.5)
    assert [line.split(" ")[1] for line in said] == ["51/100"] + [f"{k}0/100" for k in range(6, 11)]
    assert said[-1].startswith("train: 100/100 steps (100%)")


def test_evaluation_progress_counts_the_scenes_evaluation_logs_and_shows_no_info_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    said: list[str] = []
    report_log = logging.getLogger("fieldtruth.detectors.report")
    caplog.set_level(logging.WARNING)
    with evaluation_progress(2, said.append, interactive=False, interval_s=3600):
        report_log.info("evaluated %s: %d detection(s), %d label(s)", "busan", 3, 4)
        report_log.info("something else")
        report_log.info("evaluated %s: %d detection(s), %d label(s)", "gdynia", 1, 2)
    assert [line.split(";")[:2] for line in said] == [["evaluate: 1/2 scenes (50%)", " last busan"],
                                                     ["evaluate: 2/2 scenes (100%)", " last gdynia"]]
    assert not [r for r in caplog.records if r.name == "fieldtruth.detectors.report"]
    assert report_log.level == logging.NOTSET and not report_log.filters


def test_the_interval_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(INTERVAL_ENV, raising=False)
    assert interval_from_env() == 30.0
    monkeypatch.setenv(INTERVAL_ENV, "2.5")
    assert interval_from_env() == 2.5
    for bad in ("0", "-3", "soon", "inf", "nan"):
        monkeypatch.setenv(INTERVAL_ENV, bad)
        with pytest.raises(ValueError, match=f"{INTERVAL_ENV}={bad!r}"):
            interval_from_env()


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="total and an initial count"):
        Progress("scan", -1, "tile", interactive=False)

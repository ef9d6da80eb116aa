"""Tile results: parsed once from ``tiles/<id>.json``, written back unchanged, bad files named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fieldtruth.atomicfile import write_json
from fieldtruth.pipelines.errors import RunFolderError
from fieldtruth.pipelines.tileresult import (
    FAILED,
    TileDetection,
    TileResult,
    load_tile_results,
    read_tile_result,
)

DONE = {"tile_id": "r0000c0001", "status": "ok", "valid_fraction": 0.5, "error": None, "worker": "tcp://w:1",
        "detections": [{"x": 500010.0, "y": 2810020.0, "score": 0.9, "label": "vessel"}],
        "read_seconds": 0.1, "wait_seconds": 0.0, "model_seconds": 0.2, "seconds": 0.3}


def test_a_result_file_reads_into_typed_values_and_writes_back_the_same(tmp_path: Path) -> None:
    failed = {"tile_id": "r0000c0000", "status": "failed", "valid_fraction": 0.0, "detections": [],
              "error": "RasterioError: B08.tif is truncated"}
    for doc in (DONE, failed):
        write_json(tmp_path / f"{doc['tile_id']}.json", doc)
    results = load_tile_results(tmp_path)
    assert list(results) == ["r0000c0000", "r0000c0001"]
    assert results["r0000c0001"].detections == (TileDetection(500010.0, 2810020.0, 0.9, "vessel"),)
    assert results["r0000c0001"].ok
    assert results["r0000c0000"].status == FAILED and not results["r0000c0000"].ok
    assert results["r0000c0000"].read_seconds is None
    assert [results[k].to_json() for k in ("r0000c0001", "r0000c0000")] == [DONE, failed]


@pytest.mark.parametrize("text, expected", [
    ("{not json", "cannot be read as JSON"),
    (json.dumps({**DONE, "status": "done"}), "status 'ok' or 'failed'"),
    (json.dumps({k: v for k, v in DONE.items() if k != "valid_fraction"}), "KeyError"),
    (json.dumps({**DONE, "detections": [{"x": 1.0, "y": 2.0}]}), "KeyError: 'score'"),
    (json.dumps([DONE]), "status 'ok' or 'failed'"),
])
def test_a_file_that_is_not_a_tile_result_is_named_with_the_fix(
    tmp_path: Path, text: str, expected: str,
) -> None:
    path = tmp_path / "r0000c0002.json"
    path.write_text(text)
    with pytest.raises(RunFolderError, match=expected) as caught:
        read_tile_result(path)
    assert "r0000c0002.json" in str(caught.value) and "--resume" in str(caught.value)


def test_a_failed_result_needs_no_timings() -> None:
    result = TileResult("t", status=FAILED, error="OSError: gone")
    assert result.to_json() == {"tile_id": "t", "status": "failed", "valid_fraction": 0.0, "detections": [],
                                "error": "OSError: gone"}

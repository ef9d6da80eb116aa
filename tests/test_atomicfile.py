"""The atomic file writer: whole or nothing, unique temporary names, flushed file and folder."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from fieldtruth import atomicfile
from fieldtruth.atomicfile import (
    TEMPORARY_SUFFIX,
    atomic_path,
    remove_stale,
    write_bytes,
    write_json,
    write_text,
)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(TEMPORARY_SUFFIX))


def test_writes_text_bytes_and_json_and_creates_the_folder(tmp_path: Path) -> None:
    write_text(tmp_path / "a" / "b.txt", "héllo")
    write_bytes(tmp_path / "c.bin", b"\x00\x01")
    write_json(tmp_path / "d.json", {"b": Path("x"), "a": 1})
    assert (tmp_path / "a" / "b.txt").read_text(encoding="utf-8") == "héllo"
    assert (tmp_path / "c.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "d.json").read_text() == '{\n  "a": 1,\n  "b": "x"\n}\n'
    assert json.loads((tmp_path / "d.json").read_text()) == {"a": 1, "b": "x"}
    assert not _leftovers(tmp_path) and not _leftovers(tmp_path / "a")


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "run.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(target) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert not _leftovers(tmp_path)


def test_before_rename_runs_when_the_text_is_written_and_the_target_not_yet_replaced(tmp_path: Path) -> None:
    target = tmp_path / "t.json"
    seen = []

    def check() -> None:
        seen.append((target.exists(), [p.read_text() for p in tmp_path.glob(f".t.json.*{TEMPORARY_SUFFIX}")]))

    write_text(target, "done", before_rename=check)
    assert seen == [(False, ["done"])]
    assert target.read_text() == "done"


def test_the_file_and_then_its_folder_are_flushed_to_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    flushed: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(handle: int) -> None:
        flushed.append("folder" if stat.S_ISDIR(os.fstat(handle).st_mode) else "file")
        real_fsync(handle)

    monkeypatch.setattr(atomicfile.os, "fsync", recording_fsync)
    write_text(tmp_path / "x.txt", "x")
    assert flushed == ["file", "folder"]


def test_new_files_are_owner_only_unless_a_mode_is_given(tmp_path: Path) -> None:
    write_text(tmp_path / "private.html", "p")
    write_text(tmp_path / "shared.html", "s", mode=0o644)
    assert stat.S_IMODE((tmp_path / "private.html").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "shared.html").stat().st_mode) == 0o644


def test_concurrent_writers_of_one_file_never_share_a_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "risk.parquet"
    names: list[Path] = []
    both_open = threading.Barrier(2)

    def writer(text: str) -> None:
        with atomic_path(target) as tmp:
            names.append(tmp)
            tmp.write_text(text)
            both_open.wait(timeout=10)

    threads = [threading.Thread(target=writer, args=(t,)) for t in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(names)) == 2
    assert target.read_text() in ("first", "second")
    assert not _leftovers(tmp_path)


def test_remove_stale_clears_only_temporary_files(tmp_path: Path) -> None:
    (tmp_path / "keep.json").write_text("{}")
    (tmp_path / ".keep.json.abc123.tmp").write_text("{")
    assert [p.name for p in remove_stale(tmp_path)] == [".keep.json.abc123.tmp"]
    assert [p.name for p in tmp_path.iterdir()] == ["keep.json"]
    assert remove_stale(tmp_path / "missing") == []

"""The atomic file writer: a file is replaced whole or not at all, never left half written.

The new content goes to a temporary file with a unique name in the target's folder (so the rename stays
on one filesystem, and two writers of the same file never share a temporary file); the file is flushed
to disk and renamed over the target, and the folder is flushed too, so the rename survives a power cut.
Readers see the old file or the whole new one. A failed write removes its temporary file and leaves the
old file as it was. Temporary files are hidden (``.NAME.<random>.tmp``); :func:`remove_stale` clears
those a killed process left behind.

Every room may import this module; it imports no room.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

#: Suffix of the temporary files :func:`atomic_path` writes before renaming them into place.
TEMPORARY_SUFFIX = ".tmp"


@contextmanager
def atomic_path(path: Path | str, *, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; on success it replaces ``path``, on failure it goes.

    Args:
        path: the file to write; its folder is created when missing.
        mode: permission bits of the new file; the temporary file's 0600 (owner only) when None.

    Yields:
        The temporary file (created empty) for the caller to write, by name or by opening it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        if mode is not None:
            os.chmod(tmp, mode)
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def write_bytes(path: Path | str, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path, mode=mode) as tmp:
        tmp.write_bytes(data)


def write_text(
    path: Path | str, text: str, *, mode: int | None = None, before_rename: Callable[[], None] | None = None,
) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_path`).

    Args:
        path: the file to write.
        text: its whole content.
        mode: permission bits of the new file (0600 when None).
        before_rename: called once the text is written, just before the rename.
    """
    with atomic_path(path, mode=mode) as tmp:
        tmp.write_text(text, encoding="utf-8")
        if before_rename is not None:
            before_rename()


def write_json(path: Path | str, payload: object, *, before_rename: Callable[[], None] | None = None) -> None:
    """Write ``payload`` as :func:`json_text` atomically (see :func:`write_text`)."""
    write_text(path, json_text(payload), before_rename=before_rename)


def json_text(payload: object) -> str:
    """``payload`` as the JSON text :func:`write_json` writes: indented, keys sorted, a final newline.

    Values JSON does not know (paths, dates) are written as their ``str``.
    """
    return json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n"


def remove_stale(folder: Path) -> list[Path]:
    """Remove the temporary files a killed writer left in ``folder``; return them.

    Only call this where no other writer is at work in the folder (their temporary files look the same).
    """
    stale = sorted(folder.glob(f".*{TEMPORARY_SUFFIX}")) if folder.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    if stale:
        log.info("removed %d temporary file(s) a killed writer left in %s", len(stale), folder)
    return stale


def _fsync(path: Path) -> None:
    """Flush a file's content to disk."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename) to disk, where the system lets a folder be opened (POSIX)."""
    if os.name != "posix":  # pragma: no cover - Windows cannot open a folder; its rename is durable enough
        return
    _fsync(folder)

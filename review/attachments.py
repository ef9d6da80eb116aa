"""Photo fingerprints from a form export's attachments.

A form export names each photo by its file name (``1712345678901.jpg``), or by a URL with
KoboToolbox's "include media URLs"; the ledger keeps only SHA-256 digests, never photos or names.
With ``review import --photos DIR`` each named photo is looked up in DIR, a folder or a ``.zip``
(KoboToolbox's attachments download; ODK Central's download, whose ``files/<instanceID>/`` folders
hold the attachments, is its own DIR when it is the file imported), hashed, and its digest recorded;
a photo named but not found is an error of its row. When photos are named and no DIR is given, the
import is refused unless ``--without-photos`` says to leave them out: a photo is never dropped
silently. URLs are never fetched: only their file name is looked up.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)


def file_name(reference: str) -> str:
    """Return the bare file name of a photo reference (a name, a relative path or a URL).

    Raises:
        ValueError: If no file name can be taken from it.
    """
    text = reference.strip()
    if "://" in text:
        text = unquote(urlsplit(text).path)
    name = PurePosixPath(text.replace("\\", "/")).name
    if name in ("", ".", ".."):
        raise ValueError(f"expected a photo file name; got {reference!r}")
    return name


class PhotoFolder:
    """The files under a folder, or inside a ZIP archive, indexed by file name (links are not followed).

    Use it as a context manager (an archive stays open until the end of the ``with`` block).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._zip: zipfile.ZipFile | None = None
        self._index: dict[str, list[str]] = {}
        if self.root.is_dir():
            for folder, _, files in os.walk(self.root):
                for name in files:
                    path = Path(folder) / name
                    if path.is_file() and not path.is_symlink():
                        self._index.setdefault(name, []).append(str(path.relative_to(self.root)))
        elif zipfile.is_zipfile(self.root):
            self._zip = zipfile.ZipFile(self.root)
            for info in self._zip.infolist():
                if not info.is_dir():
                    self._index.setdefault(PurePosixPath(info.filename).name, []).append(info.filename)
        else:
            raise ValueError(
                f"expected a folder or a .zip of photos (the export's attachments); got {str(self.root)!r}."
            )
        log.info("photos in %s: %d file name(s)", self.root, len(self._index))

    def __enter__(self) -> PhotoFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._zip is not None:
            self._zip.close()

    def _sha256(self, member: str) -> str:
        with self._zip.open(member) if self._zip is not None else open(self.root / member, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()

    def digest(self, reference: str, instance_id: str | None = None) -> str:
        """Return the SHA-256 of the photo a reference names (preferring the submission's own folder).

        Raises:
            ValueError: If no file has that name, or several differing files do and none is the
                submission's.
        """
        name = file_name(reference)
        members = self._index.get(name, [])
        if not members:
            raise ValueError(f"photo {name!r} not found in {str(self.root)!r}: give the export's attachments")
        own = [m for m in members if instance_id and instance_id in PurePosixPath(m).parent.name]
        digests = {self._sha256(m) for m in (own or members)}
        if len(digests) > 1:
            raise ValueError(
                f"photo {name!r} names {len(members)} different files in {str(self.root)!r} and none is "
                "in a folder of this submission: keep only this export's attachments there"
            )
        return digests.pop()


def attach_photos(row: dict[str, Any], folder: PhotoFolder | None) -> int:
    """Replace a row's ``photo_files`` by their digests in ``photos``; return how many were left out.

    Raises:
        ValueError: If a named photo cannot be found or told apart under ``folder``.
    """
    names = row.pop("photo_files", "")
    references = [n for n in (names if isinstance(names, list) else str(names).split(";")) if str(n).strip()]
    if not references:
        return 0
    if folder is None:
        return len(references)
    digests = [folder.digest(str(ref), row.get("instance_id")) for ref in references]
    existing = row.get("photos") or []
    existing = existing if isinstance(existing, list) else [p for p in str(existing).split(";") if p.strip()]
    row["photos"] = [*existing, *digests]
    return 0

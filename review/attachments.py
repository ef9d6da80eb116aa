"""Photo fingerprints from a form export's attachments folder.

A form export names each photo by its file name (``1712345678901.jpg``), or by a URL with
KoboToolbox's "include media URLs"; the ledger keeps only SHA-256 digests, never photos or names.
With ``review import --photos DIR`` each named photo is looked up under DIR (the unzipped ODK Central
download, whose ``files/<instanceID>/`` folders hold the attachments, or a folder of KoboToolbox's
attachment download), hashed, and its digest recorded; a photo that is named but not found is an
error of its row. Without ``--photos`` the decisions are imported without those photos and the
import says how many were left out. URLs are never fetched: only their file name is looked up.
"""

from __future__ import annotations

import hashlib
import logging
import os
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


def sha256_file(path: Path) -> str:
    """Return the SHA-256 hex digest of a file, read in blocks."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class PhotoFolder:
    """The files under a folder, indexed by file name (symbolic links are not followed)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(
                f"expected a folder of photos (the form export's attachments); got {str(self.root)!r}. "
                "Unzip the export and give its folder."
            )
        self._index: dict[str, list[Path]] = {}
        for folder, _, files in os.walk(self.root):
            for name in files:
                path = Path(folder) / name
                if path.is_file() and not path.is_symlink():
                    self._index.setdefault(name, []).append(path)
        log.info("photo folder %s: %d file name(s)", self.root, len(self._index))

    def digest(self, reference: str, instance_id: str | None = None) -> str:
        """Return the SHA-256 of the photo a reference names (preferring the submission's own folder).

        Raises:
            ValueError: If no file has that name, or several differing files do and none is the
                submission's.
        """
        name = file_name(reference)
        paths = self._index.get(name, [])
        if not paths:
            raise ValueError(
                f"photo {name!r} not found under {str(self.root)!r}: give the export's attachments folder"
            )
        own = [p for p in paths if instance_id and instance_id in p.parent.name]
        digests = {sha256_file(p) for p in (own or paths)}
        if len(digests) > 1:
            raise ValueError(
                f"photo {name!r} names {len(paths)} different files under {str(self.root)!r} and none is "
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

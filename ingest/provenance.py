"""Provenance of inputs: where each file came from, how big it is, and its checksum."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """Return the hex sha256 of a file, read in 1 MiB chunks so memory stays flat.

    Args:
        path: the file to hash.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Provenance:
    """Where one input file came from.

    Attributes:
        href: path or URL of the file.
        source: who produced it (a catalogue, a generator, a person).
        size: size in bytes, where known.
        sha256: checksum of the bytes, where known.
        licence: licence of the data, where known.
        item_id: the catalogue item or scene id the file belongs to.
    """

    href: str
    source: str | None = None
    size: int | None = None
    sha256: str | None = None
    licence: str | None = None
    item_id: str | None = None

    @classmethod
    def of_local_file(cls, path: Path, **extra: Any) -> Provenance:
        """Describe a local file, with its size and sha256."""
        resolved = path.resolve()
        return cls(href=str(resolved), size=resolved.stat().st_size, sha256=file_sha256(resolved), **extra)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dictionary."""
        return asdict(self)

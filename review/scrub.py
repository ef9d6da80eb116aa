"""Finding a site in a file's bytes, whatever their text encoding and however deep in archives.

Erasure must reach every copy of a site in the run folder, or refuse up front and say which file it
cannot see into. A site is looked for as its id and its exact coordinates, in UTF-8, UTF-16 and UTF-32
(either byte order) and, for coordinates, as 8-byte doubles. Inside zip and tar archives and gzip, bzip2
and xz streams the members are searched too, to a bounded depth and a bounded inflated size (a zip bomb
in the run folder is refused, not unpacked). Containers this module cannot open (7z, rar, zstd, lz4,
cab, encrypted zip members) raise :class:`Unreadable`.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import logging
import lzma
import struct
import tarfile
import zipfile
from collections.abc import Callable, Iterable
from typing import IO

log = logging.getLogger(__name__)

TEXT_ENCODINGS = ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
MAX_DEPTH = 4
"""Archives nested deeper than this are refused."""
MAX_INFLATED = 2 << 30
"""Most bytes read out of the compressed members of one file before it is refused as a possible bomb."""
_CHUNK = 1 << 20
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_MAGIC = (
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!\x1a\x07", "rar"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"MSCF", "cab"),
)
_STREAMS: dict[str, Callable[[IO[bytes]], IO[bytes]]] = {
    "gzip": lambda f: gzip.GzipFile(fileobj=f, mode="rb"),
    "bzip2": lambda f: bz2.BZ2File(f, mode="rb"),
    "xz": lambda f: lzma.LZMAFile(f, mode="rb"),
}


class Unreadable(Exception):
    """A container whose content cannot be searched (the message says which and why)."""


def needles(texts: Iterable[str], numbers: Iterable[float]) -> tuple[bytes, ...]:
    """Return the byte patterns of ``texts`` (ids) and ``numbers`` (coordinates) in every encoding."""
    found: list[bytes] = []
    for text in texts:
        found += [text.encode(enc) for enc in TEXT_ENCODINGS]
    for number in numbers:
        found += [struct.pack("<d", number), struct.pack(">d", number)]
        found += [repr(number).encode(enc) for enc in TEXT_ENCODINGS]
    return tuple(dict.fromkeys(n for n in found if n))


def decode_text(data: bytes) -> tuple[str, bytes, str] | None:
    """Return ``(text, bom, encoding)`` of a text file (UTF-8/16/32, with or without a BOM), or None."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding), bom, encoding
            except UnicodeDecodeError:
                return None
    try:
        return data.decode("utf-8"), b"", "utf-8"
    except UnicodeDecodeError:
        return None


def container_kind(head: bytes) -> str | None:
    """Return the kind of archive or compressed stream that starts with ``head`` (None: a plain file)."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    return None


class _Budget:
    """Counts inflated bytes across one file's members and refuses past :data:`MAX_INFLATED`."""

    def __init__(self) -> None:
        self.used = 0

    def spend(self, count: int) -> None:
        self.used += count
        if self.used > MAX_INFLATED:
            raise Unreadable(f"it inflates to more than {MAX_INFLATED >> 20} MiB (a compression bomb?)")


def _search(stream: IO[bytes], patterns: tuple[bytes, ...], budget: _Budget | None) -> bool:
    keep = max((len(p) for p in patterns), default=1) - 1
    tail = b""
    while block := stream.read(_CHUNK):
        if budget is not None:
            budget.spend(len(block))
        window = tail + block
        if any(p in window for p in patterns):
            return True
        tail = window[-keep:] if keep else b""
    return False


def _names_mention(names: Iterable[str], patterns: tuple[bytes, ...]) -> bool:
    return any(p in name.encode("utf-8", "surrogateescape") for name in names for p in patterns)


def _in_zip(stream: IO[bytes], patterns: tuple[bytes, ...], depth: int, budget: _Budget) -> bool:
    with zipfile.ZipFile(stream) as archive:
        infos = archive.infolist()
        if _names_mention((i.filename for i in infos), patterns):
            return True
        for info in infos:
            if info.flag_bits & 0x1:
                raise Unreadable(f"its member {info.filename!r} is encrypted")
            if not info.is_dir():
                with archive.open(info) as member:
                    if _look(member, patterns, depth + 1, budget):
                        return True
    return False


def _in_tar(stream: IO[bytes], patterns: tuple[bytes, ...], depth: int, budget: _Budget) -> bool:
    with tarfile.open(fileobj=stream, mode="r:") as archive:
        for member in archive:
            if _names_mention([member.name, member.linkname], patterns):
                return True
            handle = archive.extractfile(member) if member.isfile() else None
            if handle is not None and _look(handle, patterns, depth + 1, budget):
                return True
    return False


def _look(stream: IO[bytes], patterns: tuple[bytes, ...], depth: int, budget: _Budget) -> bool:
    if depth > MAX_DEPTH:
        raise Unreadable(f"it holds archives nested more than {MAX_DEPTH} deep")
    head = stream.read(512)
    stream.seek(0)
    kind = container_kind(head)
    try:
        if kind is None:
            return _search(stream, patterns, budget if depth else None)
        if kind == "zip":
            return _in_zip(stream, patterns, depth, budget)
        if kind == "tar":
            return _in_tar(stream, patterns, depth, budget)
        if kind in _STREAMS:
            with _STREAMS[kind](stream) as inner:
                return _look(inner, patterns, depth + 1, budget)
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, tarfile.TarError, lzma.LZMAError) as exc:
        raise Unreadable(f"it looks like a {kind} archive but cannot be read ({exc})") from exc
    raise Unreadable(f"it is a {kind} archive, which fieldtruth cannot look inside")


def mentions(stream: IO[bytes], patterns: tuple[bytes, ...]) -> bool:
    """Return True when any pattern occurs in the file or in any member of the archives it holds.

    Args:
        stream: A seekable binary file.
        patterns: From :func:`needles`.

    Raises:
        Unreadable: If the file is a container that cannot be searched.
    """
    return _look(stream, patterns, 0, _Budget())

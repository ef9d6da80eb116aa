"""Zip archives read in place, never extracted: the rules every archive passes before GDAL reads a member.

A zip is outside input: a member may be named ``../../etc/cron.d/x`` or ``/etc/passwd``, be a symbolic
link, or inflate to far more than it claims (a zip bomb). fieldtruth never extracts an archive: GDAL
reads members in place through ``/vsizip/``, and only once the member list passed these rules (no
absolute or ``..`` paths, no links, a bounded member count, total size and compression ratio, the sizes
measured by streaming decompression into nothing, not trusted from the headers). Zipped shapefiles
(sector datasets) and Sentinel-2 products (``.SAFE`` zips) pass the same rules.
"""

from __future__ import annotations

import functools
import stat
import zipfile
from pathlib import Path, PurePosixPath

from fieldtruth.ingest.errors import UnsafeArchiveError

#: Zip limits: members, total uncompressed bytes, uncompressed/compressed ratio.
ZIP_MAX_MEMBERS = 1_000
ZIP_MAX_BYTES = 4 * 1024**3
ZIP_MAX_RATIO = 100.0


def check_zip(path: Path, *, max_members: int = ZIP_MAX_MEMBERS, max_bytes: int = ZIP_MAX_BYTES,
              max_ratio: float = ZIP_MAX_RATIO, measure: bool = True) -> list[str]:
    """Validate a zip archive without extracting it and return its member names.

    Args:
        path: the archive.
        max_members: most members.
        max_bytes: most uncompressed bytes over all members.
        max_ratio: largest ratio of uncompressed to compressed bytes over the archive.
        measure: decompress every member into nothing to measure its size (stored members cannot grow
            and are not read); False trusts the sizes the central directory declares (a re-check of an
            archive measured before, when a reader opens one member).

    Raises:
        UnsafeArchiveError: On absolute or ``..`` member paths, links, too many members, or when the
            uncompressed size or the compression ratio exceeds the limits.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnsafeArchiveError(f"expected a readable zip archive; {str(path)!r} is not: {exc}.") from exc
    with archive:
        members = archive.infolist()
        if len(members) > max_members:
            raise UnsafeArchiveError(
                f"expected at most {max_members} members in {str(path)!r}; got {len(members)}.")
        for info in members:
            _check_member_name(path, info)
        total_in = sum(max(info.compress_size, 1) for info in members)
        total_out = 0
        for info in members:
            budget = max_bytes - total_out
            total_out += _measure_member(path, archive, info, budget, max_bytes) if measure else \
                _declared_size(path, info, budget, max_bytes)
            if total_out / total_in > max_ratio:
                raise UnsafeArchiveError(
                    f"expected a compression ratio under {max_ratio:g} in {str(path)!r}; member "
                    f"{info.filename!r} brings it over (a zip bomb?). Refused before extraction."
                )
    return [info.filename for info in members]


def _check_member_name(path: Path, info: zipfile.ZipInfo) -> None:
    name = info.filename.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if name.startswith("/") or (parts and ":" in parts[0]) or ".." in parts:
        raise UnsafeArchiveError(
            f"expected relative member paths inside {str(path)!r}; got {info.filename!r} "
            "(absolute or '..' path traversal). Refused before extraction; re-zip the files flat."
        )
    if stat.S_ISLNK(info.external_attr >> 16):
        raise UnsafeArchiveError(
            f"expected plain files in {str(path)!r}; member {info.filename!r} is a link.")


def _declared_size(path: Path, info: zipfile.ZipInfo, budget: int, max_bytes: int) -> int:
    if info.file_size > budget:
        raise UnsafeArchiveError(
            f"expected at most {max_bytes} uncompressed bytes in {str(path)!r}; member "
            f"{info.filename!r} declares {info.file_size} (a zip bomb?). Refused before extraction."
        )
    return info.file_size


def _measure_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int,
                    max_bytes: int) -> int:
    declared = _declared_size(path, info, budget, max_bytes)
    if info.compress_type == zipfile.ZIP_STORED and declared == info.compress_size:
        return declared  # stored bytes are read as they are: they cannot inflate
    size = 0
    with archive.open(info) as stream:
        while block := stream.read(1 << 20):
            size += len(block)
            if size > budget or size > info.compress_size * ZIP_MAX_RATIO + (1 << 20):
                raise UnsafeArchiveError(
                    f"expected member {info.filename!r} of {str(path)!r} to stay within its size limits; "
                    "it decompresses to more (a zip bomb?). Refused before extraction."
                )
    return size


def member_head(path: Path, member: str, size: int) -> bytes:
    """The first ``size`` bytes of one member (for the guard's sniffing), read without extracting.

    Raises:
        UnsafeArchiveError: the archive cannot be read or has no such member.
    """
    try:
        with zipfile.ZipFile(path) as archive, archive.open(member) as stream:
            return stream.read(size)
    except (zipfile.BadZipFile, KeyError, OSError, RuntimeError) as exc:  # RuntimeError: encrypted member
        raise UnsafeArchiveError(f"member {member!r} of {str(path)!r} could not be read "
                                 f"({type(exc).__name__}); download the archive again") from exc


#: GDAL's prefix for reading a member of a zip archive in place.
VSIZIP = "/vsizip/"


def member_path(archive: Path, member: str) -> str:
    """The GDAL path of ``member`` inside ``archive`` (an absolute local path): ``/vsizip/`` + both."""
    return f"{VSIZIP}{archive}/{member}"


def split_member_path(text: str) -> tuple[Path, str] | None:
    """The archive and member a ``/vsizip/`` path names, split where GDAL splits it: after the first
    ``.zip`` that is an existing regular file; None when ``text`` is no such path."""
    if not text.startswith(VSIZIP):
        return None
    rest = text[len(VSIZIP):]
    start = 0
    while (found := rest.lower().find(".zip/", start)) >= 0:
        archive = Path(rest[: found + 4])
        if archive.is_file():
            member = rest[found + 5 :]
            return (archive, member) if member else None
        start = found + 1
    return None


@functools.lru_cache(maxsize=64)
def _listing(path: Path, size: int, mtime_ns: int) -> dict[str, int]:
    """Members of a checked archive and their declared sizes, once per archive version and process."""
    check_zip(path, measure=False)
    with zipfile.ZipFile(path) as archive:
        return {info.filename: info.file_size for info in archive.infolist()}


def listed_members(path: Path) -> dict[str, int]:
    """The members (name -> declared uncompressed size) of an archive that passes :func:`check_zip` on its
    central directory (names, links, count, declared sizes and ratio), cached per archive version.

    Raises:
        UnsafeArchiveError: the archive breaks a rule or cannot be read.
    """
    try:
        stat_ = path.stat()
    except OSError as exc:
        raise UnsafeArchiveError(f"zip archive {str(path)!r} cannot be read ({type(exc).__name__})") from exc
    return _listing(path, stat_.st_size, stat_.st_mtime_ns)

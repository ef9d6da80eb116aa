"""The input guard: every path and URL that GDAL or OGR opens is decided here, and nowhere else.

What it holds (see SECURITY.md for the whole policy):

- **Local paths** (:func:`local_file`) are plain paths: GDAL syntax (``/vsi...`` prefixes, ``vrt://``,
  ``DRIVER:`` prefixes, ``scheme://``) is refused, never interpreted; the path must be an existing
  regular file, and a path named by a document (a STAC catalogue, a VRT, a sector declaration) must lie
  inside that document's folder or a folder allowed explicitly (``allow_dirs``, the
  ``FIELDTRUTH_ALLOW_DIRS`` environment variable, folders separated by ``os.pathsep``, or the command
  line's ``--allow-dir``, which adds to it: :func:`allowing_dirs`).
- **Formats** are judged by content, not by name (:mod:`fieldtruth.ingest._sniff`), and each is opened
  with the one driver allowed for it: a raster is a GeoTIFF or a VRT of them (every source checked at
  every depth: :mod:`fieldtruth.ingest._vrt`), or a JPEG 2000 band of a Sentinel-2 product (a local
  ``.jp2`` file, or a member of a checked zip archive read in place through ``/vsizip/``, which only the
  guard builds and which it checks again whenever it is opened); a vector file is GeoJSON, a GeoPackage
  or a shapefile.
- **Remote rasters** are https URLs (or hosts allowed explicitly) read with GDAL's ``/vsicurl/``, which
  only the guard builds; every connection GDAL then makes, redirects included, is checked when it is
  made (:mod:`fieldtruth.ingest.netguard`).
- **Claimed sizes**: a GeoTIFF or VRT claiming absurd dimensions is refused before a pixel is read.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

import rasterio

from fieldtruth.ingest import _zip, netguard
from fieldtruth.ingest._sniff import HEAD_BYTES, Kind, sniff, sniff_bytes
from fieldtruth.ingest._vrt import check_vrt
from fieldtruth.ingest.errors import (
    InputNotFoundError,
    MissingDriverError,
    NotARasterError,
    RasterRefusedError,
    RefusedInputError,
)

#: Environment variable naming folders (``os.pathsep``-separated) that documents may point into.
ALLOW_DIRS_ENV = "FIELDTRUTH_ALLOW_DIRS"

#: Largest side accepted from a header. A Sentinel-2 tile is 10,980 px; a regional mosaic can be larger,
#: but a side beyond this is either a mistake or an attack.
MAX_SIDE = 120_000
#: Largest ratio of claimed pixels to bytes on disk (of a GeoTIFF, or of the GeoTIFFs a VRT reads), above
#: :data:`PLAUSIBLE_PIXELS`; compressed imagery of real scenes stays far below it (sparse all-nodata files
#: are the exception, hence the generous bound).
MAX_PIXELS_PER_BYTE = 2_000
PLAUSIBLE_PIXELS = 100_000_000

_RASTER_SUFFIXES = {".tif": Kind.GEOTIFF, ".tiff": Kind.GEOTIFF, ".vrt": Kind.VRT, ".jp2": Kind.JP2}
_DRIVERS = {Kind.GEOTIFF: "GTiff", Kind.VRT: "VRT", Kind.JP2: "JP2OpenJPEG"}
_GDAL_PREFIX = re.compile(r"^[A-Za-z][\w+.-]*:")  # GTIFF_DIR:, vrt:, HDF5:, ... (a drive letter too)


class RasterSource(NamedTuple):
    """What GDAL may be given for one raster: the path to open, the one driver allowed to open it, and the
    bytes behind its pixels where they are known (a local GeoTIFF or JPEG 2000 file, or zip member)."""

    gdal_path: str
    driver: str
    size: int | None


def allowed_dirs() -> tuple[Path, ...]:
    """Folders allowed explicitly in :data:`ALLOW_DIRS_ENV`, resolved."""
    listed = os.environ.get(ALLOW_DIRS_ENV, "").split(os.pathsep)
    return tuple(Path(p).resolve() for p in listed if p.strip())


@contextmanager
def allowing_dirs(folders: Iterable[str | Path]) -> Iterator[tuple[Path, ...]]:
    """Allow ``folders`` as if they were listed in :data:`ALLOW_DIRS_ENV`, for the duration of the block.

    The folders are added to the environment variable (what was there stays), so processes started inside
    the block (the workers of a local Dask cluster) allow them too; the variable is restored afterwards.
    Workers of a remote Dask scheduler need :data:`ALLOW_DIRS_ENV` set in their own environment.

    Args:
        folders: folders documents may name files in besides their own (the command line's
            ``--allow-dir``); relative ones resolve against the working folder.

    Yields:
        every folder allowed inside the block, resolved.

    Raises:
        RefusedInputError: a folder that does not exist, is not a folder, or whose name holds
            ``os.pathsep`` (the variable could not list it).
    """
    added = []
    for folder in folders:
        resolved = Path(folder).resolve()
        if not resolved.is_dir():
            raise RefusedInputError(f"allowed folder {str(folder)!r} is not an existing folder; give one")
        if os.pathsep in str(resolved):
            raise RefusedInputError(f"allowed folder {str(resolved)!r} holds {os.pathsep!r}, which separates "
                                    f"the folders of {ALLOW_DIRS_ENV}; rename or link it")
        added.append(str(resolved))
    before = os.environ.get(ALLOW_DIRS_ENV)
    if added:
        os.environ[ALLOW_DIRS_ENV] = os.pathsep.join([*([before] if before else []), *added])
    try:
        yield allowed_dirs()
    finally:
        if before is not None:
            os.environ[ALLOW_DIRS_ENV] = before
        else:
            os.environ.pop(ALLOW_DIRS_ENV, None)


def is_url(href: str) -> bool:
    """Whether ``href`` is an http(s) URL (anything else is a local path, or refused)."""
    return urlsplit(href).scheme.lower() in ("http", "https")


def refuse_gdal_syntax(text: str, what: str = "path") -> None:
    """Refuse a string GDAL would not read as a plain local path: a ``/vsi...`` prefix, a URL of any
    scheme, a ``DRIVER:`` prefix, a NUL, or nothing.

    Raises:
        RefusedInputError: it is one of those.
    """
    if (not text or "\x00" in text or text.lower().startswith("/vsi") or "://" in text
            or _GDAL_PREFIX.match(text)):
        raise RefusedInputError(
            f"{what} {text!r} is not a plain local path (GDAL virtual file systems, URLs other than https "
            "and driver prefixes are not read); give a path to a file"
        )


def local_file(text: str | Path, base: Path | None = None, within: Sequence[Path] | None = None,
               *, what: str = "file") -> Path:
    """Check one local path and return it resolved.

    Args:
        text: the path as given (relative ones resolve against ``base``, else the working folder).
        base: folder of the document that names the path.
        within: folders the path must resolve into (with :func:`allowed_dirs`); None when the user named
            the path directly.
        what: what the path is, for messages.

    Raises:
        RefusedInputError: GDAL syntax, not a regular file, or outside ``within``.
        InputNotFoundError: the path does not exist.
    """
    text = str(text)
    refuse_gdal_syntax(text, what)
    path = Path(text)
    resolved = (base / path if base is not None and not path.is_absolute() else path).resolve()
    if str(resolved).lower().startswith("/vsi"):
        raise RefusedInputError(f"{what} {text!r} resolves to {str(resolved)!r}, which GDAL would not read "
                                "as a file")
    if not resolved.exists():
        raise InputNotFoundError(f"{what} {text!r} does not exist" + (f" (looked for {str(resolved)!r})"
                                                                       if str(resolved) != text else ""))
    if not resolved.is_file():
        raise RefusedInputError(f"{what} {text!r} is not a regular file (a folder, device or pipe); give a "
                                "file")
    if within is not None:
        folders = (*(Path(w).resolve() for w in within), *allowed_dirs())
        if not any(resolved.is_relative_to(folder) for folder in folders):
            shown = "" if str(resolved) == text else f" (resolved: {str(resolved)!r})"
            raise RefusedInputError(
                f"{what} {text!r}{shown} lies outside {[str(f) for f in folders]!r}; a document may only "
                f"name files inside its own folder (allow another folder with --allow-dir or "
                f"{ALLOW_DIRS_ENV})"
            )
    return resolved


def raster_source(href: str | Path, *, allow_hosts: Iterable[str] = ()) -> RasterSource:
    """Decide how a raster may be opened: its GDAL path and driver, after every check.

    Args:
        href: a local GeoTIFF/VRT/JPEG 2000 path, a ``/vsizip/`` path to a JPEG 2000 member of a zip
            archive (as :func:`zip_member` builds it), or an https URL of a GeoTIFF (http too for
            ``allow_hosts``).
        allow_hosts: hosts allowed although not public or not https.

    Raises:
        InputNotFoundError: a local path or archive member that does not exist.
        RasterRefusedError: a suffix, content, URL, source, archive or claimed size that is not allowed.
        NotARasterError: the content is not what the suffix says (a VRT disguised as ``.tif``).
        MissingDriverError: JPEG 2000, and this GDAL has no driver for it.
    """
    href = str(href)
    netguard.ensure_gdal_guard()
    if href.startswith(_zip.VSIZIP):
        return _zipped_raster(href)
    suffix = Path(urlsplit(href).path if is_url(href) else href).suffix.lower()
    expected = _RASTER_SUFFIXES.get(suffix)
    if expected is None:
        raise RasterRefusedError(
            f"raster {href!r} has suffix {suffix!r}; only {sorted(_RASTER_SUFFIXES)} are read "
            "(convert it with gdal_translate)"
        )
    if is_url(href):
        if expected is not Kind.GEOTIFF:
            raise RasterRefusedError(f"{href!r} is remote {expected.value}; only GeoTIFFs are read over "
                                     "https (VRTs are read locally, where their sources are checked)")
        try:
            url = netguard.check_url(href, allow_hosts)
        except RefusedInputError as exc:
            raise RasterRefusedError(str(exc)) from exc
        netguard.allow(allow_hosts)
        return RasterSource("/vsicurl/" + url, "GTiff", None)
    try:
        path = local_file(href, what="raster")
    except RefusedInputError as exc:
        raise RasterRefusedError(str(exc)) from exc
    found = sniff(path)
    if found is not expected:
        raise NotARasterError(f"{href!r} is not a readable {_DRIVERS[expected]} raster: its content is "
                              f"{found.value} (judged by content, not by the suffix {suffix!r}); refused")
    if found is Kind.JP2:
        require_driver("JP2OpenJPEG", href)
    for claim in check_vrt(path, (path.parent,), local_file) if found is Kind.VRT else ():
        check_claimed_size(str(claim.path), claim.width, claim.height, claim.bands, claim.source_bytes)
    return RasterSource(str(path), _DRIVERS[found], None if found is Kind.VRT else path.stat().st_size)


def zip_member(archive: str | Path, member: str) -> str:
    """The path GDAL reads a JPEG 2000 member of a zip archive by (``/vsizip/``), after every check.

    The archive must be a plain local path to a zip that passes the zip rules
    (:func:`fieldtruth.ingest._zip.check_zip`, on its central directory; measure it with ``check_zip``
    first), the member must be listed in it and be JPEG 2000 by content. :func:`raster_source` checks
    the path it returns again whenever it is opened.

    Raises:
        InputNotFoundError: the archive or the member does not exist.
        RasterRefusedError: the archive is not a plain local zip, or the member is not a ``.jp2``.
        UnsafeArchiveError: the archive breaks a zip rule.
        NotARasterError: the member's content is not JPEG 2000.
    """
    try:
        path = local_file(archive, what="zip archive")
    except RefusedInputError as exc:
        raise RasterRefusedError(str(exc)) from exc
    if sniff(path) is not Kind.ZIP:
        raise RasterRefusedError(f"{str(archive)!r} is {sniff(path).value}, not a zip archive; refused")
    if Path(member).suffix.lower() != ".jp2":
        raise RasterRefusedError(f"member {member!r} of {str(path)!r} is not a .jp2 file; only the JPEG 2000 "
                                 "bands of zipped Sentinel-2 products are read inside archives")
    if member not in _zip.listed_members(path):
        raise InputNotFoundError(f"zip archive {str(path)!r} has no member {member!r}")
    found = sniff_bytes(_zip.member_head(path, member, HEAD_BYTES))
    if found is not Kind.JP2:
        raise NotARasterError(f"member {member!r} of {str(path)!r} is {found.value}, not JPEG 2000 as its "
                              "name says; refused")
    return _zip.member_path(path, member)


def zip_member_parts(href: str) -> tuple[Path, str] | None:
    """The archive and member of a ``/vsizip/`` path (split where GDAL splits it), or None for another
    href."""
    return _zip.split_member_path(href)


def _zipped_raster(href: str) -> RasterSource:
    """The source of a ``/vsizip/`` path, split as GDAL splits it and checked again by :func:`zip_member`."""
    parts = zip_member_parts(href)
    if parts is None:
        raise RasterRefusedError(f"{href!r} names no member of an existing zip archive; GDAL paths are only "
                                 "read as the guard builds them")
    archive, member = parts
    gdal_path = zip_member(archive, member)  # GDAL gets the path as checked, rebuilt
    require_driver("JP2OpenJPEG", href)
    return RasterSource(gdal_path, "JP2OpenJPEG", _zip.listed_members(archive.resolve())[member])


@functools.cache
def _gdal_drivers() -> frozenset[str]:
    with rasterio.Env() as env:
        return frozenset(env.drivers())


def require_driver(driver: str, href: str) -> None:
    """Refuse ``href`` with a clear message when rasterio's GDAL lacks ``driver``.

    Raises:
        MissingDriverError: the driver is missing.
    """
    if driver not in _gdal_drivers():
        raise MissingDriverError(
            f"{href!r} needs GDAL's {driver} driver, which the GDAL in this rasterio "
            f"({rasterio.__gdal_version__}) lacks; install rasterio's wheel from PyPI (it ships JPEG 2000 "
            "support), or convert the file to GeoTIFF (gdal_translate -of COG)"
        )


def check_claimed_size(href: str, width: int, height: int, count: int, size_on_disk: int | None) -> None:
    """Refuse a raster whose header claims absurd dimensions for the bytes behind it.

    Raises:
        RasterRefusedError: a side over :data:`MAX_SIDE`, or over :data:`MAX_PIXELS_PER_BYTE` claimed pixels
            per byte of ``size_on_disk`` (when known) above :data:`PLAUSIBLE_PIXELS`.
    """
    if width > MAX_SIDE or height > MAX_SIDE or width < 0 or height < 0:
        raise RasterRefusedError(
            f"raster {href!r} claims {width} x {height} pixels, over the {MAX_SIDE} px limit per side; "
            "cut it into tiles or check the file is not corrupt"
        )
    claimed = width * height * max(count, 1)
    too_dense = size_on_disk is not None and claimed > MAX_PIXELS_PER_BYTE * max(size_on_disk, 1)
    if too_dense and claimed > PLAUSIBLE_PIXELS:
        raise RasterRefusedError(
            f"raster {href!r} claims {width} x {height} x {count} pixels in only {size_on_disk} bytes; "
            "refusing to read an implausible header"
        )


#: Vector formats GDAL/OGR may read, by what the file's content must be.
VECTOR_KINDS = {"geojson": (Kind.JSON,), "gpkg": (Kind.GEOPACKAGE,), "shapefile": (Kind.SHAPEFILE, Kind.ZIP)}
#: Vector file suffixes and the format each must hold.
VECTOR_SUFFIXES = {".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg", ".shp": "shapefile"}


def vector_file(path: str | Path, *, within: Sequence[Path] | None = None, what: str = "vector file") -> str:
    """Check a local GeoJSON, GeoPackage or shapefile named by its suffix (:func:`local_file`, then
    :func:`vector_source`) and return the path OGR may open.

    Raises:
        InputNotFoundError: the file does not exist.
        RefusedInputError: another suffix, GDAL syntax, outside ``within``, or content of another format.
    """
    fmt = VECTOR_SUFFIXES.get(Path(path).suffix.lower())
    if fmt is None:
        raise RefusedInputError(f"{what} {str(path)!r} has suffix {Path(path).suffix!r}; give a GeoJSON, "
                                f"GeoPackage or shapefile ({sorted(VECTOR_SUFFIXES)})")
    return vector_source(local_file(path, within=within, what=what), fmt, what=what)


def vector_source(path: Path, fmt: str, *, what: str = "vector file") -> str:
    """Check that a local file is the vector format ``fmt`` says (GeoJSON, GeoPackage or shapefile) and
    return the path OGR may open.

    Raises:
        RefusedInputError: the content is another format (an OGR VRT named ``.geojson``, say).
    """
    netguard.ensure_gdal_guard()
    found = sniff(path)
    kinds = VECTOR_KINDS.get(fmt, ())
    if fmt == "shapefile":  # a zip only as .zip (read through /vsizip/), a shapefile only as .shp
        kinds = (Kind.ZIP,) if Path(path).suffix.lower() == ".zip" else (Kind.SHAPEFILE,)
    if found not in kinds:
        raise RefusedInputError(
            f"{what} {str(path)!r} is {found.value}, not {fmt} as declared; only GeoJSON, GeoPackage and "
            "shapefiles are handed to OGR (convert the file, e.g. with ogr2ogr)"
        )
    return str(path)

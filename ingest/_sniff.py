"""What a file really is, from its first bytes: GDAL chooses drivers by content, so the guard does too.

A file named ``.tif`` or ``.geojson`` may hold VRT XML that makes GDAL read other files or URLs; GDAL's
VRT drivers claim a file when their tag appears anywhere in its first bytes, whatever its name. So the
guard reads the head of every local file before a GDAL driver sees it and compares it with what the
file is supposed to be.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

#: Bytes read from the head of a file.
HEAD_BYTES = 64 * 1024

#: Tags of GDAL/OGR formats that name other files, URLs or services (lower case): a head holding one
#: anywhere is never handed to GDAL, whatever else it looks like.
INDIRECT_MARKERS = (b"<vrtdataset", b"<ogrvrtdatasource", b"<ogrwfsdatasource", b"wfs_capabilities",
                    b"<gdal_wms", b"<gdal_wmts", b"<wcs_gdal")

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
#: The JPEG 2000 signature box (ISO/IEC 15444-1 I.5.1) that opens every JP2 file; a bare codestream
#: (``.j2k``) has none and is not read.
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_XML_PROLOGUE = re.compile(rb"\A(?:\s+|<\?.*?\?>|<!--.*?-->)*", re.DOTALL)
_XML_ROOT = re.compile(rb"<([A-Za-z_][\w.-]*)")


class Kind(StrEnum):
    """What a file's head says it is."""

    GEOTIFF = "a GeoTIFF"
    JP2 = "a JPEG 2000 (JP2) file"
    VRT = "a GDAL VRT (XML)"
    INDIRECT = "a GDAL format that reads other files or services"
    XML_DTD = "XML with a document type declaration"
    XML = "XML"
    JSON = "JSON"
    GEOPACKAGE = "a GeoPackage"
    SQLITE = "an SQLite database"
    ZIP = "a zip archive"
    SHAPEFILE = "a shapefile"
    PARQUET = "Parquet"
    OTHER = "of an unknown kind"


def sniff(path: Path) -> Kind:
    """Read a file's head and say what it is.

    Raises:
        OSError: the file cannot be read.
    """
    with open(path, "rb") as handle:
        return sniff_bytes(handle.read(HEAD_BYTES))


def sniff_bytes(head: bytes) -> Kind:
    """Say what a file is from its first bytes (see :data:`HEAD_BYTES`)."""
    lowered = head.lower()
    xml = _xml_root(head)
    if xml == b"VRTDataset" and not any(m in lowered for m in INDIRECT_MARKERS[1:]):
        return Kind.VRT
    if any(marker in lowered for marker in INDIRECT_MARKERS):
        return Kind.INDIRECT
    if head[:4] in _TIFF_MAGIC:
        return Kind.GEOTIFF
    if head.startswith(_JP2_SIGNATURE):
        return Kind.JP2
    if head.startswith(b"SQLite format 3\x00"):
        return Kind.GEOPACKAGE if head[68:72] in (b"GPKG", b"GP10", b"GP11") else Kind.SQLITE
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return Kind.ZIP
    if head[:4] == b"\x00\x00\x27\x0a":
        return Kind.SHAPEFILE
    if head[:4] == b"PAR1":
        return Kind.PARQUET
    if xml is not None:
        return Kind.XML_DTD if b"<!doctype" in lowered or b"<!entity" in lowered else Kind.XML
    if head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"["):
        return Kind.JSON
    return Kind.OTHER


def _xml_root(head: bytes) -> bytes | None:
    """The root element's tag of an XML head (after a BOM, declarations and comments), or None."""
    text = head.removeprefix(b"\xef\xbb\xbf")
    text = text[_XML_PROLOGUE.match(text).end():]  # type: ignore[union-attr]
    if text.lower().startswith(b"<!doctype"):
        return b"!DOCTYPE"
    match = _XML_ROOT.match(text)
    return match.group(1) if match else None

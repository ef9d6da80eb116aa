"""What a GDAL VRT would open, checked before GDAL opens it: every source, at every depth.

A VRT is XML that names other datasets (``<SourceFilename>`` of each source, ``<SourceDataset>`` of a
warped VRT), and GDAL opens those with any driver it has: a VRT could read a URL, a raw file on disk
(``VRTRawRasterBand``), another VRT disguised as ``.tif``, or run a pixel function. This module walks
the XML (and every VRT it names, to a bounded depth) and allows only plain and warped VRTs whose
sources are local GeoTIFFs or VRTs of them, inside the folders the caller allows. What GDAL will be
given is then exactly what was checked: source names with any GDAL syntax (``/vsi...``, ``vrt://``,
``DRIVER:``) are refused rather than interpreted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple
from xml.etree import ElementTree

from fieldtruth.ingest._sniff import Kind, sniff
from fieldtruth.ingest.errors import (
    InputNotFoundError,
    NotARasterError,
    RasterRefusedError,
    RefusedInputError,
)

#: Largest VRT document read, nesting depth of VRTs in VRTs, and sources over all of them.
MAX_VRT_BYTES = 16 * 1024**2
MAX_DEPTH = 4
MAX_SOURCES = 10_000

_DATASET_KINDS = {None, "VRTWarpedDataset"}
_BAND_KINDS = {None, "VRTSourcedRasterBand", "VRTWarpedRasterBand"}
_TRANSFORMERS = {"Transformer", "BaseTransformer", "GenImgProjTransformer", "ReprojectionTransformer",
                 "ApproxTransformer"}
_SOURCE_TAGS = ("SourceFilename", "SourceDataset")
_SUFFIX_KINDS = {".tif": Kind.GEOTIFF, ".tiff": Kind.GEOTIFF, ".vrt": Kind.VRT}


class VrtClaim(NamedTuple):
    """What one VRT claims (its size) and what it ends in (the bytes of the GeoTIFFs it reads)."""

    path: Path
    width: int
    height: int
    bands: int
    source_bytes: int


#: ``(text, base, within) -> resolved local file`` (the guard's rule for local paths).
LocalFile = Callable[[str, Path, Sequence[Path]], Path]


def check_vrt(path: Path, within: Sequence[Path], local_file: LocalFile) -> list[VrtClaim]:
    """Check a local VRT and every VRT it names; return their claims (the outermost first).

    Args:
        path: the VRT (resolved).
        within: folders its sources (and theirs) must lie in.
        local_file: the guard's check of one local path.

    Raises:
        NotARasterError: the VRT is not readable XML.
        RasterRefusedError: a kind of VRT, band, transformer or source that is not allowed, a VRT that
            names itself, nests too deep or names too many sources.
    """
    walk = _Walk(within, local_file)
    walk.visit(path, (path,))
    return walk.claims


class _Walk:
    def __init__(self, within: Sequence[Path], local_file: LocalFile) -> None:
        self.within, self.local_file = within, local_file
        self.claims: list[VrtClaim] = []
        self.sources = 0

    def visit(self, path: Path, chain: tuple[Path, ...]) -> int:
        """Check one VRT; return the bytes of the GeoTIFFs it ends in."""
        root = _parse(path)
        index = len(self.claims)
        self.claims.append(VrtClaim(path, 0, 0, 0, 0))
        total = 0
        for element in root.iter():
            _check_element(path, element)
            if element.tag not in _SOURCE_TAGS:
                continue
            self.sources += 1
            if self.sources > MAX_SOURCES:
                raise RasterRefusedError(f"VRT {str(chain[0])!r} names over {MAX_SOURCES} sources; refused")
            source = _source(path, element, self.within, self.local_file)
            if _kind(path, source) is not Kind.VRT:
                total += source.stat().st_size
                continue
            if source in chain or len(chain) > MAX_DEPTH:
                why = "refers back to it" if source in chain else f"nests VRTs over {MAX_DEPTH} deep"
                raise RasterRefusedError(f"VRT {str(path)!r} reads VRT {str(source)!r}, which {why}; refused")
            total += self.visit(source, (*chain, source))
        self.claims[index] = VrtClaim(path, _int(root, "rasterXSize", path), _int(root, "rasterYSize", path),
                                      len(root.findall("VRTRasterBand")), total)
        return total


def _parse(path: Path) -> ElementTree.Element:
    if path.stat().st_size > MAX_VRT_BYTES:
        raise RasterRefusedError(f"VRT {str(path)!r} is over {MAX_VRT_BYTES} bytes; refused")
    try:
        root = ElementTree.fromstring(path.read_bytes())
    except ElementTree.ParseError as exc:
        raise NotARasterError(f"VRT {str(path)!r} is not valid XML ({exc}); fix or rebuild it") from exc
    if root.tag != "VRTDataset" or root.get("subClass") not in _DATASET_KINDS:
        raise RasterRefusedError(
            f"VRT {str(path)!r} is a {root.get('subClass') or root.tag!r}; only plain and warped VRTs are "
            "read"
        )
    return root


def _check_element(path: Path, element: ElementTree.Element) -> None:
    if element.tag == "VRTRasterBand" and element.get("subClass") not in _BAND_KINDS:
        raise RasterRefusedError(
            f"VRT {str(path)!r} has a band of kind {element.get('subClass')!r} (raw files, pixel functions "
            "and processing are not read); only bands of sources are allowed"
        )
    if element.tag.endswith("Transformer") and element.tag not in _TRANSFORMERS:
        raise RasterRefusedError(
            f"VRT {str(path)!r} uses a {element.tag!r} (it may read further files); only reprojection is "
            "allowed"
        )


def _source(vrt: Path, element: ElementTree.Element, within: Sequence[Path], local_file: LocalFile) -> Path:
    text = (element.text or "").strip()
    base = vrt.parent if element.get("relativeToVRT") == "1" else Path.cwd()
    try:
        return local_file(text, base, within)
    except (RefusedInputError, InputNotFoundError) as exc:
        raise RasterRefusedError(
            f"VRT {str(vrt)!r} reads from {text!r} ({exc}); a VRT may only read local GeoTIFFs (or VRTs of "
            "them) inside its own folder or an allowed one"
        ) from exc


def _kind(vrt: Path, source: Path) -> Kind:
    expected = _SUFFIX_KINDS.get(source.suffix.lower())
    found = sniff(source)
    if expected is None or found is not expected:
        raise RasterRefusedError(
            f"VRT {str(vrt)!r} reads from {str(source)!r}, which is {found.value}"
            + (f" named {source.suffix!r}" if expected is not None else "")
            + "; a VRT may only read local GeoTIFFs (or VRTs of them)"
        )
    return found


def _int(root: ElementTree.Element, name: str, path: Path) -> int:
    try:
        return int(root.get(name, ""))
    except ValueError as exc:
        raise NotARasterError(f"VRT {str(path)!r} has no integer {name}; fix or rebuild it") from exc

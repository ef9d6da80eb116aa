"""What a Sentinel-2 Level-2A product says about itself: its ``MTD_MSIL2A.xml``, read as outside input.

The product metadata document (ESA's PSD "User_Product_Level-2A") gives the product's id
(``PRODUCT_URI``), its type, the sensing time, the spacecraft, the processing baseline, the
quantification value of surface reflectance and, from processing baseline 04.00 on (products since
25 January 2022), the ``BOA_ADD_OFFSET`` of each band: reflectance = (DN + offset) / quantification, with
an offset of -1000, so the same ground has digital numbers 1000 higher than in older products. Elements
are found by their local names, whatever namespace prefix the PSD version uses. The document is size
bounded and may hold no document type declaration (no entities); messages name elements, never values.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from xml.etree import ElementTree

from fieldtruth.ingest._sniff import Kind, sniff_bytes
from fieldtruth.ingest.errors import ProductError

#: Largest metadata document read (a real one is about 60 KB).
MAX_MTD_BYTES = 16 * 1024**2
#: Processing baseline from which every band must have a BOA_ADD_OFFSET.
OFFSET_BASELINE = (4, 0)
#: The reflectance scale fieldtruth reads (16-bit integers, reflectance x 10,000).
QUANTIFICATION = 10_000.0
#: ``band_id`` of the offsets -> physical band, for documents without a ``Spectral_Information`` list.
BAND_IDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
_L2A_ROOT = "Level-2A_User_Product"


class ProductInfo(NamedTuple):
    """The facts of ``MTD_MSIL2A.xml`` that a scan records and needs.

    Attributes:
        product_id: ``PRODUCT_URI`` without ``.SAFE``.
        product_type: ``PRODUCT_TYPE`` (``S2MSI2A``).
        sensing_time: ``PRODUCT_START_TIME`` (ISO 8601), where given.
        platform: the spacecraft in STAC's form (``sentinel-2a``, ``-2b``, ``-2c``), where given.
        processing_baseline: ``PROCESSING_BASELINE`` (``05.10``), where given.
        boa_offsets: physical band (``B02``) -> ``BOA_ADD_OFFSET`` (-1000 from baseline 04.00 on).
        quantification: ``BOA_QUANTIFICATION_VALUE``, where given.
        nodata: the ``NODATA`` special value (0), where given.
        cloud_cover: ``Cloud_Coverage_Assessment`` in percent, where given.
    """

    product_id: str
    product_type: str
    sensing_time: str | None
    platform: str | None
    processing_baseline: str | None
    boa_offsets: dict[str, float]
    quantification: float | None
    nodata: float | None
    cloud_cover: float | None

    @property
    def baseline(self) -> tuple[int, ...] | None:
        """The processing baseline as numbers (``(5, 10)``), or None when absent or malformed."""
        if not self.processing_baseline or not re.fullmatch(r"\d{1,2}\.\d{1,2}", self.processing_baseline):
            return None
        return tuple(int(p) for p in self.processing_baseline.split("."))

    def offset_of(self, band: str, where: str) -> float:
        """The BOA offset to add to ``band``'s digital numbers (0 before baseline 04.00 when absent).

        Raises:
            ProductError: baseline 04.00 or later without an offset for the band.
        """
        if band in self.boa_offsets:
            return self.boa_offsets[band]
        if self.baseline is not None and self.baseline >= OFFSET_BASELINE:
            raise ProductError(
                f"{where}: processing baseline {self.processing_baseline} but no BOA_ADD_OFFSET for {band}; "
                "the product's metadata is incomplete: download the product again"
            )
        return 0.0


def parse_mtd(data: bytes, where: str) -> ProductInfo:
    """Parse a product's ``MTD_MSIL2A.xml``.

    Args:
        data: the document's bytes.
        where: the document's path, for messages.

    Raises:
        ProductError: too large, not XML, with a document type declaration, a Level-1C or other product,
            no product id, or a number that is not one.
    """
    if len(data) > MAX_MTD_BYTES:
        raise ProductError(f"{where} is over {MAX_MTD_BYTES} bytes; not a product's metadata")
    if sniff_bytes(data[:65536]) is Kind.XML_DTD:
        raise ProductError(f"{where} holds a document type declaration; refused")
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise ProductError(f"{where} is not valid XML ({exc}); download the product again") from exc
    if _local(root.tag) != _L2A_ROOT:
        raise ProductError(f"{where} describes a {_local(root.tag)!r}, not a Level-2A product; fieldtruth "
                           "reads surface reflectance (L2A: download the L2A product, or run Sen2Cor)")
    texts: dict[str, str] = {}
    for element in root.iter():
        if len(element) == 0 and element.text and element.text.strip():
            texts.setdefault(_local(element.tag), element.text.strip())
    uri = texts.get("PRODUCT_URI", "")
    if not uri:
        raise ProductError(f"{where} has no PRODUCT_URI; not a product's metadata")
    return ProductInfo(
        product_id=uri.removesuffix(".SAFE"), product_type=texts.get("PRODUCT_TYPE", ""),
        sensing_time=texts.get("PRODUCT_START_TIME") or texts.get("DATATAKE_SENSING_START"),
        platform=_platform(texts.get("SPACECRAFT_NAME")),
        processing_baseline=texts.get("PROCESSING_BASELINE"), boa_offsets=_offsets(root, where),
        quantification=_number(texts.get("BOA_QUANTIFICATION_VALUE"), "BOA_QUANTIFICATION_VALUE", where),
        nodata=_nodata(root, where),
        cloud_cover=_number(texts.get("Cloud_Coverage_Assessment"), "Cloud_Coverage_Assessment", where),
    )


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _number(text: str | None, element: str, where: str) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError as exc:
        raise ProductError(f"{where}: {element} is not a number; download the product again") from exc


def _platform(name: str | None) -> str | None:
    """``Sentinel-2B`` -> ``sentinel-2b`` (STAC's ``platform``)."""
    return name.strip().lower() if name and re.fullmatch(r"Sentinel-2[A-Z]", name.strip()) else None


def physical_band(name: str) -> str:
    """``B2`` -> ``B02``, ``B8A`` -> ``B8A``: the band names of the product's file names."""
    match = re.fullmatch(r"B(\d{1,2})(A?)", name.strip().upper())
    return f"B{int(match.group(1)):02d}{match.group(2)}".replace("B08A", "B8A") if match else name


def _offsets(root: ElementTree.Element, where: str) -> dict[str, float]:
    """``BOA_ADD_OFFSET`` per physical band (``band_id`` mapped through ``Spectral_Information``)."""
    ids = {e.get("bandId"): physical_band(e.get("physicalBand") or "")
           for e in root.iter() if _local(e.tag) == "Spectral_Information"}
    offsets: dict[str, float] = {}
    for element in root.iter():
        if _local(element.tag) != "BOA_ADD_OFFSET":
            continue
        band_id = element.get("band_id") or ""
        by_position = BAND_IDS[int(band_id)] if band_id.isdigit() and int(band_id) < len(BAND_IDS) else None
        band = ids.get(band_id) or by_position
        value = _number((element.text or "").strip(), f"BOA_ADD_OFFSET band_id={band_id!r}", where)
        if band is not None and value is not None:
            offsets[band] = value
    return offsets


def _nodata(root: ElementTree.Element, where: str) -> float | None:
    for element in root.iter():
        if _local(element.tag) != "Special_Values":
            continue
        kind = next((c.text for c in element if _local(c.tag) == "SPECIAL_VALUE_TEXT"), None)
        index = next((c.text for c in element if _local(c.tag) == "SPECIAL_VALUE_INDEX"), None)
        if (kind or "").strip() == "NODATA":
            return _number((index or "").strip(), "SPECIAL_VALUE_INDEX of NODATA", where)
    return None

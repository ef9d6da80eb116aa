"""Opening raster files safely: explicit drivers from an allow-list, and plausibility checks on headers.

Every raster fieldtruth reads is opened here, so that a VRT disguised as ``.tif`` or a header that
claims 200,000 x 200,000 pixels is refused before GDAL reads a single block.
"""

from __future__ import annotations

import logging
from pathlib import Path
from xml.etree import ElementTree

import rasterio
from rasterio.errors import RasterioIOError

from fieldtruth.ingest.errors import InputNotFoundError, NotARasterError, RasterRefusedError
from fieldtruth.ingest.remote import is_remote

log = logging.getLogger(__name__)

#: File suffix -> the only GDAL driver allowed to open it.
ALLOWED_DRIVERS = {".tif": "GTiff", ".tiff": "GTiff", ".vrt": "VRT"}

#: Largest side accepted from a header. A Sentinel-2 tile is 10,980 px; a regional mosaic can be larger,
#: but a side beyond this is either a mistake or an attack.
MAX_SIDE = 120_000

#: Largest ratio of claimed pixels to bytes on disk for a local GeoTIFF; compressed imagery of real
#: scenes stays far below this (sparse all-nodata files are the exception, hence the generous bound).
MAX_PIXELS_PER_BYTE = 2_000


def open_raster(href: str | Path) -> rasterio.DatasetReader:
    """Open a raster for reading with the one driver its suffix allows, after checking its header.

    Args:
        href: local path or remote URL of a GeoTIFF/COG (``.tif``/``.tiff``) or VRT (``.vrt``).

    Raises:
        InputNotFoundError: a local path that does not exist.
        RasterRefusedError: a suffix not on the allow-list, or implausible claimed dimensions.
        NotARasterError: the file is not a raster its suffix's driver can read.
    """
    href = str(href)
    suffix = Path(href.split("?", 1)[0]).suffix.lower()
    driver = ALLOWED_DRIVERS.get(suffix)
    if driver is None:
        raise RasterRefusedError(
            f"raster {href!r} has suffix {suffix!r}; only {sorted(ALLOWED_DRIVERS)} are read (convert it with gdal_translate)"
        )
    local = not is_remote(href)
    if local and not Path(href).exists():
        raise InputNotFoundError(f"raster {href!r} does not exist")
    if driver == "VRT":
        _check_vrt_sources(href)
    try:
        dataset = rasterio.open(href, driver=driver)
    except RasterioIOError as exc:
        raise NotARasterError(f"{href!r} is not a readable {driver} raster: {exc}") from exc
    try:
        _check_claimed_size(dataset, href, local=local)
    except RasterRefusedError:
        dataset.close()
        raise
    return dataset


def _check_vrt_sources(href: str) -> None:
    """A VRT may name any file or URL as its source: allow only local rasters on the allow-list."""
    if is_remote(href):
        raise RasterRefusedError(f"VRT {href!r} is remote; only local VRTs are read (their sources are checked)")
    try:
        root = ElementTree.parse(href).getroot()
    except ElementTree.ParseError as exc:
        raise NotARasterError(f"VRT {href!r} is not valid XML: {exc}") from exc
    for element in root.iter("SourceFilename"):
        source = (element.text or "").strip()
        if element.get("relativeToVRT") == "1":
            source = str(Path(href).parent / source)
        if source.startswith("/vsi") or "://" in source or Path(source).suffix.lower() not in (".tif", ".tiff"):
            raise RasterRefusedError(
                f"VRT {href!r} reads from {source!r}; a VRT may only read local GeoTIFFs"
            )


def _check_claimed_size(dataset: rasterio.DatasetReader, href: str, *, local: bool) -> None:
    width, height = dataset.width, dataset.height
    if width > MAX_SIDE or height > MAX_SIDE:
        raise RasterRefusedError(
            f"raster {href!r} claims {width} x {height} pixels, over the {MAX_SIDE} px limit per side; "
            "cut it into tiles or check the file is not corrupt"
        )
    if local and dataset.driver == "GTiff":
        size = Path(href).stat().st_size
        claimed = width * height * dataset.count
        if claimed > MAX_PIXELS_PER_BYTE * max(size, 1) and claimed > 100_000_000:
            raise RasterRefusedError(
                f"raster {href!r} claims {width} x {height} x {dataset.count} pixels in only {size} bytes; "
                "refusing to read an implausible header"
            )

"""Opening raster files safely: through the input guard, with one allowed driver, headers checked.

Every raster fieldtruth reads is opened here, so that a VRT disguised as ``.tif``, a VRT reading a URL
or a raw file, a ``/vsi...`` path from a document, or a header that claims 200,000 x 200,000 pixels is
refused before GDAL reads a single block (see :mod:`fieldtruth.ingest.guard`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import rasterio
from rasterio.errors import RasterioIOError

from fieldtruth.ingest.errors import NotARasterError, RasterRefusedError
from fieldtruth.ingest.guard import MAX_PIXELS_PER_BYTE, MAX_SIDE, check_claimed_size, raster_source

log = logging.getLogger(__name__)

__all__ = ["MAX_PIXELS_PER_BYTE", "MAX_SIDE", "open_raster"]


def open_raster(href: str | Path, *, allow_hosts: Iterable[str] = ()) -> rasterio.DatasetReader:
    """Open a raster for reading with the one driver its content allows, after checking its header.

    Args:
        href: local path of a GeoTIFF/COG (``.tif``/``.tiff``), VRT (``.vrt``) or JPEG 2000 file (``.jp2``),
            a JPEG 2000 member of a checked zip (:func:`fieldtruth.ingest.guard.zip_member`), or https URL
            of a GeoTIFF.
        allow_hosts: hosts allowed although not public or not https (the scene's, see
            :attr:`fieldtruth.ingest.scene.Scene.allow_hosts`).

    Raises:
        InputNotFoundError: a local path that does not exist.
        RasterRefusedError: refused by the guard (suffix, content, URL, VRT source, claimed size).
        NotARasterError: the file is not a raster its driver can read.
        MissingDriverError: the file needs a GDAL driver this rasterio lacks (JPEG 2000).
    """
    href = str(href)
    source = raster_source(href, allow_hosts=allow_hosts)
    try:
        dataset = rasterio.open(source.gdal_path, driver=source.driver)
    except RasterioIOError as exc:
        raise NotARasterError(f"{href!r} is not a readable {source.driver} raster: {exc}") from exc
    try:
        check_claimed_size(href, dataset.width, dataset.height, dataset.count, source.size)
    except RasterRefusedError:
        dataset.close()
        raise
    return dataset

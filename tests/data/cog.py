"""Checks of a Cloud Optimised GeoTIFF's layout, the rules of GDAL's ``validate_cloud_optimized_geotiff.py``
(not shipped with the rasterio wheel) through the TIFF metadata GDAL exposes to rasterio."""

from __future__ import annotations

from pathlib import Path

import rasterio


def _offsets(path: Path, overview_level: int | None) -> tuple[int, list[int]]:
    """The IFD offset of a level, and the offsets of the blocks of its first block row and column."""
    kwargs = {} if overview_level is None else {"overview_level": overview_level}
    with rasterio.open(path, **kwargs) as src:
        ifd = int(src.get_tag_item("IFD_OFFSET", "TIFF", bidx=1))
        rows, cols = src.block_shapes[0]
        n_rows, n_cols = -(-src.height // rows), -(-src.width // cols)
        blocks = [(0, c) for c in range(n_cols)] + [(r, n_cols - 1) for r in range(1, n_rows)]
        data = [int(src.get_tag_item(f"BLOCK_OFFSET_{c}_{r}", "TIFF", bidx=1) or 0) for r, c in blocks]
    return ifd, data


def cog_layout_errors(path: Path) -> list[str]:
    """What keeps ``path`` from being a valid Cloud Optimised GeoTIFF (empty when nothing does)."""
    errors = []
    with rasterio.open(path) as src:
        if src.driver != "GTiff":
            return [f"not a GeoTIFF ({src.driver})"]
        if src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") != "COG":
            errors.append("no GDAL_STRUCTURAL_METADATA saying LAYOUT=IFDS_BEFORE_DATA (not written as a COG)")
        rows, cols = src.block_shapes[0]
        if cols >= src.width > 512 or rows == 1:
            errors.append(f"not tiled: blocks of {rows} x {cols}")
        overviews = src.overviews(1)
        if max(src.width, src.height) > 512 and not overviews:
            errors.append("no overviews on an image larger than 512 pixels")
    levels = [_offsets(path, None)] + [_offsets(path, i) for i in range(len(overviews))]
    ifds = [ifd for ifd, _ in levels]
    if ifds != sorted(ifds) or len(set(ifds)) != len(ifds):
        errors.append(f"IFDs not in the order main image then overviews: {ifds}")
    firsts = [data[0] for _, data in levels]
    if firsts != sorted(firsts, reverse=True):
        errors.append(f"image data not ordered smallest overview first, main image last: {firsts}")
    if max(ifds) > min(offset for _, data in levels for offset in data if offset):
        errors.append("an IFD lies after image data: headers are not all at the start of the file")
    for level, (_, data) in enumerate(levels):
        written = [offset for offset in data if offset]
        if written != sorted(written):
            errors.append(f"blocks of level {level} not in row-major order: {data}")
    return errors

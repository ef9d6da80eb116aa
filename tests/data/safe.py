"""Seeded Sentinel-2 L2A products in the SAFE layout (folder and zip), built from a scene folder's bands.

The bands are written as lossless JPEG 2000 (rasterio's JP2OpenJPEG driver, reversible wavelet), so a
product holds exactly the pixels of the GeoTIFFs it was made from (plus the BOA offset, when given); the
metadata document has the element names and layout of ESA's ``MTD_MSIL2A.xml`` (PSD 14.9), trimmed to
what a reader uses.
"""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import numpy as np
import rasterio

PRODUCT = "S2B_MSIL2A_20240115T050219_N0510_R019_T45RUL_20240115T071844"
GRANULE = "L2A_T45RUL_A035800_20240115T050905"
TILE_PREFIX = "T45RUL_20240115T050219"
BAND_FILES = ("B02", "B03", "B04", "B08")
#: band_id of the metadata's lists -> physical band (B1 ... B12, B8A after B8).
_PHYSICAL = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")
_JP2 = {"driver": "JP2OpenJPEG", "QUALITY": "100", "REVERSIBLE": "YES", "YCBCR420": "NO"}


def mtd_xml(*, baseline: str = "05.10", offset: int | None = -1000, platform: str = "Sentinel-2B",
            cloud: float = 3.5, product: str = PRODUCT, level: str = "Level-2A",
            quantification: int = 10000) -> str:
    """A product metadata document with the real element names (``offset`` None: no offset list)."""
    offsets = "" if offset is None else (
        "<BOA_ADD_OFFSET_VALUES_LIST>" + "".join(
            f'<BOA_ADD_OFFSET band_id="{i}">{offset}</BOA_ADD_OFFSET>' for i in range(13))
        + "</BOA_ADD_OFFSET_VALUES_LIST>")
    spectral = "".join(f'<Spectral_Information bandId="{i}" physicalBand="{b}"><RESOLUTION>10</RESOLUTION>'
                       "</Spectral_Information>" for i, b in enumerate(_PHYSICAL))
    files = "".join(f"<IMAGE_FILE>GRANULE/{GRANULE}/IMG_DATA/R10m/{TILE_PREFIX}_{b}_10m</IMAGE_FILE>"
                    for b in BAND_FILES)
    psd = "https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd"
    return f"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<n1:{level}_User_Product xmlns:n1="{psd}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <n1:General_Info>
    <Product_Info>
      <PRODUCT_START_TIME>2024-01-15T05:02:19.024Z</PRODUCT_START_TIME>
      <PRODUCT_STOP_TIME>2024-01-15T05:02:19.024Z</PRODUCT_STOP_TIME>
      <PRODUCT_URI>{product}.SAFE</PRODUCT_URI>
      <PROCESSING_LEVEL>{level}</PROCESSING_LEVEL>
      <PRODUCT_TYPE>S2MSI2A</PRODUCT_TYPE>
      <PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE>
      <GENERATION_TIME>2024-01-15T07:18:44.000000Z</GENERATION_TIME>
      <Datatake datatakeIdentifier="GS2B_20240115T050219_035800_N{baseline}">
        <SPACECRAFT_NAME>{platform}</SPACECRAFT_NAME>
        <DATATAKE_TYPE>INS-NOBS</DATATAKE_TYPE>
        <DATATAKE_SENSING_START>2024-01-15T05:02:19.024Z</DATATAKE_SENSING_START>
        <SENSING_ORBIT_NUMBER>19</SENSING_ORBIT_NUMBER>
        <SENSING_ORBIT_DIRECTION>DESCENDING</SENSING_ORBIT_DIRECTION>
      </Datatake>
      <Product_Organisation><Granule_List>
        <Granule granuleIdentifier="S2B_OPER_MSI_L2A_TL_2BPS_{GRANULE}" imageFormat="JPEG2000">
          {files}
        </Granule>
      </Granule_List></Product_Organisation>
    </Product_Info>
    <Product_Image_Characteristics>
      <Special_Values><SPECIAL_VALUE_TEXT>NODATA</SPECIAL_VALUE_TEXT>
        <SPECIAL_VALUE_INDEX>0</SPECIAL_VALUE_INDEX></Special_Values>
      <Special_Values><SPECIAL_VALUE_TEXT>SATURATED</SPECIAL_VALUE_TEXT>
        <SPECIAL_VALUE_INDEX>65535</SPECIAL_VALUE_INDEX></Special_Values>
      <QUANTIFICATION_VALUES_LIST>
        <BOA_QUANTIFICATION_VALUE unit="none">{quantification}</BOA_QUANTIFICATION_VALUE>
        <AOT_QUANTIFICATION_VALUE unit="none">1000.0</AOT_QUANTIFICATION_VALUE>
      </QUANTIFICATION_VALUES_LIST>
      {offsets}
      <Spectral_Information_List>{spectral}</Spectral_Information_List>
    </Product_Image_Characteristics>
  </n1:General_Info>
  <n1:Quality_Indicators_Info>
    <Cloud_Coverage_Assessment>{cloud}</Cloud_Coverage_Assessment>
  </n1:Quality_Indicators_Info>
</n1:{level}_User_Product>
"""


def scl_layer(shape: tuple[int, int], cloud_box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """A 20 m scene classification (class 4, vegetation) of a 10 m scene of ``shape``, with cloud (class 9)
    over ``cloud_box`` (row0, row1, col0, col1 in 10 m pixels)."""
    scl = np.full((shape[0] // 2, shape[1] // 2), 4, dtype=np.uint8)
    if cloud_box is not None:
        r0, r1, c0, c1 = cloud_box
        scl[r0 // 2 : r1 // 2, c0 // 2 : c1 // 2] = 9
    return scl


def write_scl(path: Path, scl: np.ndarray, like: Path, **options: str) -> Path:
    """Write a 20 m SCL layer on the grid of the 10 m raster ``like`` (GeoTIFF, or JPEG 2000 with options)."""
    with rasterio.open(like) as src:
        transform = src.transform * src.transform.scale(2, 2)
        profile = {"driver": "GTiff", "crs": src.crs, **options}
    with rasterio.open(path, "w", width=scl.shape[1], height=scl.shape[0], count=1, dtype="uint8",
                       transform=transform, **profile) as dst:
        dst.write(scl, 1)
    return path


def safe_product(scene: Path, root: Path, *, offset: int | None = -1000, baseline: str = "05.10",
                 scl: np.ndarray | None = None, drop: tuple[str, ...] = (), **mtd: object) -> Path:
    """A ``.SAFE`` folder holding the bands ``B02 B03 B04 B08`` of the scene folder ``scene`` as JPEG 2000
    (each pixel + ``-offset``, as products of baseline 04.00 on store them), and ``scl`` as the 20 m SCL.

    Args:
        scene: a folder of ``B02.tif`` ... ``B08.tif``.
        root: folder to write the product into.
        offset: the BOA_ADD_OFFSET declared (None: no offset list, as before baseline 04.00).
        baseline: the processing baseline declared.
        scl: the 20 m scene classification, or None for a product without one.
        drop: bands not to write (``"B08"``: a product missing its near-infrared band).
        **mtd: further arguments of :func:`mtd_xml`.

    Returns:
        the ``.SAFE`` folder.
    """
    safe = root / f"{mtd.get('product', PRODUCT)}.SAFE"
    folder = safe / "GRANULE" / GRANULE / "IMG_DATA"
    (folder / "R10m").mkdir(parents=True, exist_ok=True)
    (folder / "R20m").mkdir(exist_ok=True)
    for band in BAND_FILES:
        if band in drop:
            continue
        with rasterio.open(scene / f"{band}.tif") as src:
            data = src.read(1).astype(np.int64) - (offset or 0)
            profile = {"width": src.width, "height": src.height, "crs": src.crs, "transform": src.transform}
        with rasterio.open(folder / "R10m" / f"{TILE_PREFIX}_{band}_10m.jp2", "w", count=1, dtype="uint16",
                           **profile, **_JP2) as dst:
            dst.write(np.clip(data, 0, 65535).astype(np.uint16), 1)
    if scl is not None:
        write_scl(folder / "R20m" / f"{TILE_PREFIX}_SCL_20m.jp2", scl, scene / "B02.tif", **_JP2)
    (safe / "MTD_MSIL2A.xml").write_text(mtd_xml(baseline=baseline, offset=offset, **mtd), encoding="utf-8")
    return safe


def zip_product(safe: Path, archive: Path, *, extra: dict[str, bytes] | None = None,
                link: tuple[str, str] | None = None) -> Path:
    """Zip a ``.SAFE`` folder as the hubs distribute it (the folder at the top), plus hostile members.

    Args:
        safe: the product folder.
        archive: the zip to write.
        extra: further members, name -> bytes (``../../evil.txt``, say).
        link: a member that is a symbolic link (name, target).
    """
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for path in sorted(safe.rglob("*")):
            if path.is_file():
                out.write(path, f"{safe.name}/{path.relative_to(safe).as_posix()}")
        for name, data in (extra or {}).items():
            out.writestr(name, data)
        if link is not None:
            info = zipfile.ZipInfo(link[0])
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            out.writestr(info, link[1])
    return archive


def tree(root: Path) -> set[str]:
    """Every path under ``root`` (to show that nothing was written or extracted)."""
    return {os.path.relpath(p, root) for p in root.rglob("*")}

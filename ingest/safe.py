"""Sentinel-2 L2A products as downloaded: a ``.SAFE`` folder or its ``.zip``, read in place.

A product holds one granule (a 110 x 110 km tile) in ESA's SAFE layout::

    S2B_MSIL2A_20231217T135659_N0510_R067_T21JUK_20231217T175625.SAFE/
        MTD_MSIL2A.xml
        GRANULE/L2A_T21JUK_A035414_20231217T140918/IMG_DATA/R10m/T21JUK_20231217T135659_B02_10m.jp2
        ...                                       /IMG_DATA/R20m/T21JUK_20231217T135659_SCL_20m.jp2

The scene takes the four 10 m bands (B02 blue, B03 green, B04 red, B08 nir) and, when present, the 20 m
scene classification layer (SCL) as its cloud and no-data mask (read with nearest resampling onto the
10 m grid; classes 0 no data, 1 saturated or defective, 3 cloud shadow, 8 and 9 cloud, 10 thin cirrus
make a pixel invalid: :data:`fieldtruth.imagery.read.SCL_UNUSABLE`). Bands are JPEG 2000, read with the
JP2OpenJPEG driver of rasterio's GDAL. A zip is never extracted: it passes the zip rules
(:mod:`fieldtruth.ingest._zip`, sizes measured) and its members are read through ``/vsizip/`` paths that
only the input guard builds (:func:`fieldtruth.ingest.guard.zip_member`).

The product's own metadata (:mod:`fieldtruth.ingest._safe_mtd`) goes into the scene: id, sensing time,
platform, processing baseline, cloud cover, quantification value and BOA offsets (``Scene.metadata``,
written to run.json), and the offsets of baseline 04.00 and later become the scene's ``band_offsets``
(-1000 added to the valid pixels of each band as tiles are read), so a detector sees the same reflectance
x 10,000 from a product of any baseline. The no-data value of the product (0) is the scene's nodata.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from fieldtruth.ingest import _zip
from fieldtruth.ingest._safe_mtd import MAX_MTD_BYTES, QUANTIFICATION, ProductInfo, parse_mtd
from fieldtruth.ingest.errors import ProductError
from fieldtruth.ingest.guard import local_file, zip_member
from fieldtruth.ingest.provenance import Provenance
from fieldtruth.ingest.scene import CLOUD_MASK, BandSource, Scene, band_grid

log = logging.getLogger(__name__)

#: The product's metadata document, at the root of the ``.SAFE`` folder.
MTD = "MTD_MSIL2A.xml"
#: The 10 m bands a scene takes, and their common names.
BANDS_10M = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir"}
LICENCE = ("Copernicus Sentinel Data Terms and Conditions (free, full and open; credit 'Copernicus Sentinel "
           "data')")
_BAND_FILE = re.compile(r"GRANULE/([^/]+)/IMG_DATA/R10m/[^/]+_(B0[2348])_10m\.jp2")
_SCL_FILE = re.compile(r"GRANULE/([^/]+)/IMG_DATA/R20m/[^/]+_SCL_20m\.jp2")


def is_safe_folder(path: Path) -> bool:
    """Whether ``path`` is a Sentinel-2 product folder (it holds ``MTD_MSIL2A.xml`` or ``MTD_MSIL1C.xml``)."""
    return path.is_dir() and any((path / name).is_file() for name in (MTD, "MTD_MSIL1C.xml"))


def open_safe(path: str | Path, *, hash_files: bool = True) -> Scene:
    """Open a Sentinel-2 L2A product, a ``.SAFE`` folder or its ``.zip``, as a scene (headers only).

    Args:
        path: the product folder or zip archive, as downloaded.
        hash_files: compute the sha256 of the zip (or of each file read from a folder) for provenance.

    Raises:
        ProductError: not an L2A product in the SAFE layout, several granules, no 10 m band, metadata
            incomplete or reflectance not scaled by 10,000.
        UnsafeArchiveError: a zip that breaks the zip rules (``..`` or absolute members, links, bombs).
        MissingDriverError: rasterio's GDAL has no JPEG 2000 driver.
        BandMismatchError: bands that do not line up.
    """
    path = Path(path).resolve()
    if path.is_dir():
        files, mtd, info = _folder(path)
        bands = _bands(files, str(path), str)
        provenance = [*(Path(b.href) for b in bands.values()), mtd]
    else:
        files, mtd, info = _zipped(path)
        bands = _bands(files, str(path), lambda member: zip_member(path, member))
        provenance = [path]
    grid = band_grid(bands)
    where = str(path)
    if info.quantification is not None and info.quantification != QUANTIFICATION:
        raise ProductError(f"{where}: BOA_QUANTIFICATION_VALUE is {info.quantification:g}; fieldtruth reads "
                           f"reflectance scaled by {QUANTIFICATION:g} (as every L2A product so far)")
    offsets = {name: info.offset_of(band, where) for band, name in BANDS_10M.items() if name in bands}
    source = f"Sentinel-2 L2A product ({'SAFE folder' if path.is_dir() else 'zip'})"
    records = tuple(
        Provenance.of_local_file(p, source=source, licence=LICENCE, item_id=info.product_id) if hash_files
        else Provenance(href=str(p), source=source, licence=LICENCE, item_id=info.product_id)
        for p in provenance
    )
    log.info("opened Sentinel-2 product %s (%s, baseline %s, offsets %s)", info.product_id, info.platform,
             info.processing_baseline, offsets)
    return Scene(
        id=info.product_id, bands=bands, crs=grid.crs, bounds=grid.bounds, resolution=grid.resolution,
        width=grid.width, height=grid.height, acquired=info.sensing_time, provenance=records,
        nodata=info.nodata if info.nodata is not None else grid.nodata,
        metadata=_metadata(info, offsets, source),
        band_offsets={name: value for name, value in offsets.items() if value},
    )


def _metadata(info: ProductInfo, offsets: dict[str, float], source: str) -> dict[str, object]:
    facts = {
        "platform": info.platform, "constellation": "sentinel-2", "processing_level": "L2A",
        "product_type": info.product_type, "processing_baseline": info.processing_baseline,
        "boa_add_offset": offsets, "boa_quantification_value": info.quantification,
        "cloud_cover": info.cloud_cover, "licence": LICENCE, "source": source,
    }
    return {k: v for k, v in facts.items() if v is not None}


def _folder(root: Path) -> tuple[dict[str, str], Path, ProductInfo]:
    """A product folder's JPEG 2000 files (path inside the product -> checked local path), its metadata
    file and facts."""
    mtd = root / MTD
    if not mtd.is_file():
        raise ProductError(f"{str(root)!r} holds no {MTD} (a Level-1C product, or not a Sentinel-2 product); "
                           "fieldtruth reads Level-2A products as downloaded")
    mtd = local_file(mtd, what="product metadata")
    if mtd.stat().st_size > MAX_MTD_BYTES:
        raise ProductError(f"{str(mtd)!r} is over {MAX_MTD_BYTES} bytes; not a product's metadata")
    info = parse_mtd(mtd.read_bytes(), repr(str(mtd)))
    files = {p.relative_to(root).as_posix(): str(local_file(p, what="band file"))
             for p in sorted((root / "GRANULE").glob("*/IMG_DATA/R*m/*.jp2"))}
    return files, mtd, info


def _zipped(archive: Path) -> tuple[dict[str, str], Path, ProductInfo]:
    """A zipped product's JPEG 2000 members (path inside the product -> member name), the archive and the
    metadata's facts."""
    archive = local_file(archive, what="Sentinel-2 zip")
    members = _zip.check_zip(archive)  # names, links, count, sizes and ratio measured
    roots = [m for m in members if PurePosixPath(m).name == MTD and len(PurePosixPath(m).parts) <= 2]
    if len(roots) != 1:
        raise ProductError(
            f"{str(archive)!r} holds {len(roots)} {MTD} at its top (expected one, in the .SAFE folder); give "
            "a Sentinel-2 L2A product zip as downloaded"
        )
    prefix = roots[0][: -len(MTD)]
    info = parse_mtd(_zip.member_head(archive, roots[0], MAX_MTD_BYTES + 1), f"{MTD} in {str(archive)!r}")
    files = {m[len(prefix):]: m for m in members if m.startswith(prefix) and m.lower().endswith(".jp2")}
    return files, archive, info


def _bands(files: dict[str, str], where: str, href: Callable[[str], str]) -> dict[str, BandSource]:
    """The 10 m bands and the SCL of the product's one granule, in fieldtruth's band order.

    Args:
        files: path inside the product -> where the file is (``href`` turns that into the href to read).
        where: the product, for messages.
        href: the checked href of a file.
    """
    found: dict[str, str] = {}
    granules = set()
    for inner, location in files.items():
        if match := _BAND_FILE.fullmatch(inner):
            granules.add(match.group(1))
            found[BANDS_10M[match.group(2)]] = location
        elif match := _SCL_FILE.fullmatch(inner):
            granules.add(match.group(1))
            found[CLOUD_MASK] = location
    if len(granules) > 1:
        raise ProductError(f"{where} holds {len(granules)} granules; fieldtruth reads single-tile products "
                           "(as distributed since December 2016): download the tile's product")
    if not any(name in found for name in BANDS_10M.values()):
        raise ProductError(
            f"{where} has no 10 m band (GRANULE/*/IMG_DATA/R10m/*_B02_10m.jp2 ...); give a complete "
            "Sentinel-2 L2A product as downloaded"
        )
    order = (*BANDS_10M.values(), CLOUD_MASK)
    return {name: BandSource(href(found[name])) for name in order if name in found}

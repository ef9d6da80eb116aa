"""Scenes: an imagery source ready to read (band name -> file, CRS, bounds, resolution, provenance).

A scene is opened from a folder of per-band files (as Sentinel-2 products ship them, and as
``../shared/data/sen2ships/<port>/`` holds them) or from one multi-band GeoTIFF or VRT. Opening reads
headers only; pixels are read later, window by window, by the imagery room.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import rasterio
from rasterio.coords import BoundingBox
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError

from fieldtruth.ingest.errors import BandMismatchError, InputNotFoundError, NotARasterError
from fieldtruth.ingest.guard import local_file
from fieldtruth.ingest.provenance import Provenance
from fieldtruth.ingest.rasters import open_raster

log = logging.getLogger(__name__)

#: Sentinel-2 band file stems and the common names fieldtruth uses for them.
SENTINEL2_BANDS = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir", "B8A": "nir08", "B11": "swir16"}
COMMON_NAMES = ("blue", "green", "red", "nir", "nir08", "swir16", "swir22", "coastal", "rededge", "scl")
#: The Sentinel-2 scene classification band: not a model input, but a per-pixel cloud and nodata mask.
CLOUD_MASK = "scl"
DEFAULT_BANDS = ("blue", "green", "red", "nir")
RASTER_SUFFIXES = (".tif", ".tiff", ".vrt")


@dataclass(frozen=True)
class BandSource:
    """Where one band's pixels are: a file (or URL) and the 1-based band index inside it."""

    href: str
    index: int = 1


@dataclass(frozen=True)
class Scene:
    """An imagery source ready to read.

    Attributes:
        id: stable identifier of the scene (catalogue id, or the folder name).
        bands: band common name -> where its pixels are, in the scene's band order.
        crs: coordinate reference system of the scene grid.
        bounds: scene footprint in ``crs``.
        resolution: pixel size (x, y) of the finest band, in CRS units.
        width: columns of the scene grid at ``resolution``.
        height: rows of the scene grid at ``resolution``.
        acquired: acquisition date or time (ISO 8601), where known.
        provenance: one record per file the scene reads.
        metadata: further facts from the source (platform, cloud cover, licence, ...).
        band_offsets: band name -> value added to that band's valid pixels as tiles are read (a per-scene
            radiometric correction, such as a detector's water-level offset); none by default.
        allow_hosts: hosts the user allowed for this scene's hrefs although they are not public or not
            https (``--allow-host``); every read of the scene passes them to the input guard.
    """

    id: str
    bands: dict[str, BandSource]
    crs: CRS
    bounds: BoundingBox
    resolution: tuple[float, float]
    width: int
    height: int
    acquired: str | None = None
    provenance: tuple[Provenance, ...] = ()
    nodata: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    band_offsets: dict[str, float] = field(default_factory=dict)
    allow_hosts: tuple[str, ...] = ()

    @property
    def band_names(self) -> tuple[str, ...]:
        """Names of the image bands in the scene's order (the cloud mask, if any, is not one of them)."""
        return tuple(name for name in self.bands if name != CLOUD_MASK)

    @property
    def transform(self) -> rasterio.Affine:
        """Affine transform of the scene grid (north-up)."""
        return rasterio.transform.from_origin(self.bounds.left, self.bounds.top, *self.resolution)

    def offsets_for(self, bands: tuple[str, ...]) -> np.ndarray | None:
        """The :attr:`band_offsets` of ``bands`` as float32 ``(bands, 1, 1)`` (0 for a band without one), or
        None when the scene has none."""
        if not self.band_offsets:
            return None
        return np.array([self.band_offsets.get(b, 0.0) for b in bands], dtype=np.float32)[:, None, None]

    def read(self, bands: tuple[str, ...] | None = None) -> np.ndarray:
        """Read whole bands on the scene grid as float32 ``(bands, height, width)``, as stored (without
        :attr:`band_offsets`: callers add them once they know which pixels are valid).

        Meant for small scenes (training, evaluation); scans read tiles through the imagery room.
        Coarser bands are resampled bilinearly to the scene grid.

        Args:
            bands: band names to read, in order; all bands when None.
        """
        names = bands or self.band_names
        out = np.empty((len(names), self.height, self.width), dtype=np.float32)
        for i, name in enumerate(names):
            source = self.bands[name]
            with open_raster(source.href, allow_hosts=self.allow_hosts) as dataset:
                out[i] = dataset.read(
                    source.index, out_shape=(self.height, self.width), resampling=Resampling.bilinear
                ).astype(np.float32)
        return out

    def describe(self) -> dict[str, Any]:
        """Return a JSON-ready summary for run.json and model cards."""
        return {
            "id": self.id,
            "crs": self.crs.to_string(),
            "bounds": list(self.bounds),
            "resolution": list(self.resolution),
            "size": [self.width, self.height],
            "acquired": self.acquired,
            "bands": {name: {"href": b.href, "index": b.index} for name, b in self.bands.items()},
            "provenance": [p.to_dict() for p in self.provenance],
            "metadata": self.metadata,
            "band_offsets": self.band_offsets,
        }


def open_scene(path: str | Path, *, hash_files: bool = True) -> Scene:
    """Open a scene from a folder of per-band rasters or from one multi-band raster file.

    Args:
        path: a folder (``B02.tif``, ``B03.tif``, ... or ``blue.tif``, ...; optional ``scene.json``)
            or a multi-band GeoTIFF/VRT.
        hash_files: compute each file's sha256 for provenance (reads every byte once).

    Raises:
        InputNotFoundError: the path does not exist.
        NotARasterError: the folder holds no recognisable band files, or the file is not a raster.
        BandMismatchError: the bands differ in CRS or footprint.
    """
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(f"imagery {str(path)!r} does not exist; give a scene folder or a GeoTIFF")
    meta = _read_scene_json(path / "scene.json") if path.is_dir() else {}
    if path.is_dir():
        bands = _bands_in_folder(path, meta)
    else:
        bands = _bands_in_file(path)
    return _assemble(path, bands, meta, hash_files=hash_files)


def _read_scene_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
        raise NotARasterError(f"scene description {str(path)!r} is not valid JSON ({type(exc).__name__}); "
                              "fix or remove it") from exc
    if not isinstance(meta, dict):
        raise NotARasterError(f"scene description {str(path)!r} must be a JSON object, got "
                              f"{type(meta).__name__}")
    return meta


def _band_name_for(stem: str, declared: dict[str, str]) -> str | None:
    if stem in declared:
        return declared[stem]
    upper = stem.upper()
    if upper.endswith("SCL"):
        return CLOUD_MASK
    match = re.search(r"(?:^|_)(B0?\d{1,2}A?)$", upper)
    if match:
        key = match.group(1)
        key = key if len(key) == 3 else "B0" + key[1:]
        return SENTINEL2_BANDS.get(key)
    lower = stem.lower()
    return lower if lower in COMMON_NAMES else None


def _bands_in_folder(folder: Path, meta: dict[str, Any]) -> dict[str, BandSource]:
    declared = meta.get("bands") if isinstance(meta.get("bands"), dict) else {}
    found: dict[str, BandSource] = {}
    for file in sorted(folder.iterdir()):
        if file.suffix.lower() not in RASTER_SUFFIXES or not file.is_file():
            continue
        name = _band_name_for(file.stem, {str(k): str(v) for k, v in declared.items()})
        if name is not None and name not in found:
            found[name] = BandSource(str(local_file(file, what="band file")))
    if not found:
        rasters = [f.name for f in folder.iterdir() if f.suffix.lower() in RASTER_SUFFIXES]
        if len(rasters) == 1:
            return _bands_in_file(local_file(folder / rasters[0], what="raster"))
        raise NotARasterError(
            f"folder {str(folder)!r} holds no band files; expected per-band GeoTIFFs named like "
            f"B02.tif/B03.tif/B04.tif/B08.tif or blue.tif/green.tif/red.tif/nir.tif, or one multi-band .tif"
        )
    ordered = [n for n in COMMON_NAMES if n in found]
    return {name: found[name] for name in ordered}


def _bands_in_file(file: Path) -> dict[str, BandSource]:
    with open_raster(str(file)) as dataset:
        count = dataset.count
        descriptions = [(d or "").strip().lower() for d in dataset.descriptions]
    names: list[str] = []
    for i in range(count):
        described = descriptions[i] if i < len(descriptions) else ""
        if described in COMMON_NAMES and described not in names:
            names.append(described)
        elif count <= len(DEFAULT_BANDS) and len(names) == i:
            names.append(DEFAULT_BANDS[i])
        else:
            names.append(f"band{i + 1}")
    href = str(file.resolve())
    return {name: BandSource(href, i + 1) for i, name in enumerate(names)}


class _Header(NamedTuple):
    """What a band file's header says, read once per file."""

    href: str
    crs: CRS | None
    bounds: BoundingBox
    res: tuple[float, float]
    datetime: str | None
    nodata: float | None


def _read_headers(bands: dict[str, BandSource]) -> dict[str, _Header]:
    """Each band's file header; a multi-band file is opened once, not once per band."""
    by_href: dict[str, _Header] = {}
    for name, source in bands.items():
        if source.href in by_href:
            continue
        try:
            with open_raster(source.href) as dataset:
                by_href[source.href] = _Header(source.href, dataset.crs, dataset.bounds, dataset.res,
                                               dataset.tags().get("TIFFTAG_DATETIME"), dataset.nodata)
        except RasterioIOError as exc:
            raise NotARasterError(f"band {name!r} file {source.href!r} could not be opened: {exc}") from exc
    return {name: by_href[source.href] for name, source in bands.items()}


class BandGrid(NamedTuple):
    """The grid a scene's bands share (the finest band's pixel size), and what their headers say."""

    crs: CRS
    bounds: BoundingBox
    resolution: tuple[float, float]
    width: int
    height: int
    nodata: float | None
    datetime: str | None


def band_grid(bands: dict[str, BandSource]) -> BandGrid:
    """Read every band's header (through the input guard) and check that they line up.

    Raises:
        NotARasterError: a band file could not be opened.
        BandMismatchError: the bands differ in CRS or footprint, or have none.
    """
    headers = _read_headers(bands)
    crs, bounds, (xres, yres) = _check_bands_align(headers)
    width = round((bounds.right - bounds.left) / xres)
    height = round((bounds.top - bounds.bottom) / yres)
    return BandGrid(crs, bounds, (xres, yres), width, height, next(iter(headers.values())).nodata,
                    next((h.datetime for h in headers.values() if h.datetime), None))


def _assemble(path: Path, bands: dict[str, BandSource], meta: dict[str, Any], *, hash_files: bool) -> Scene:
    grid = band_grid(bands)
    hrefs = sorted({b.href for b in bands.values()})
    licence = meta.get("licence") or meta.get("license")
    provenance = tuple(
        Provenance.of_local_file(Path(h), source=meta.get("source"), licence=licence, item_id=meta.get("id"))
        if hash_files
        else Provenance(href=h, source=meta.get("source"), licence=licence, item_id=meta.get("id"))
        for h in hrefs
    )
    acquired = meta.get("datetime") or meta.get("acquired") or grid.datetime
    scene_id = str(meta.get("id") or (path.name if path.is_dir() else path.stem))
    extra = {k: meta[k] for k in ("platform", "processing_level", "cloud_cover", "licence", "source")
             if k in meta}
    log.debug("opened scene %s: %d bands, %dx%d px, %s", scene_id, len(bands), grid.width, grid.height,
              grid.crs)
    return Scene(
        id=scene_id, bands=bands, crs=grid.crs, bounds=grid.bounds, resolution=grid.resolution,
        width=grid.width, height=grid.height, acquired=str(acquired) if acquired else None,
        provenance=provenance, nodata=grid.nodata, metadata=extra,
    )


def _check_bands_align(headers: dict[str, _Header]) -> tuple[CRS, BoundingBox, tuple[float, float]]:
    """Check every band has the same CRS and footprint; return them and the finest resolution."""
    names = list(headers)
    first = headers[names[0]]
    crs0, bounds0 = first.crs, first.bounds
    if crs0 is None:
        raise BandMismatchError(
            f"band {names[0]!r} ({first.href!r}) has no CRS; georeference the file (e.g. gdal_edit.py -a_srs)"
        )
    finest = min((h.res for h in headers.values()), key=lambda r: r[0] * r[1])
    for name in names[1:]:
        href, crs, bounds, res = headers[name][:4]
        if crs != crs0:
            raise BandMismatchError(
                f"band {name!r} ({href!r}) is in {crs!r} but band {names[0]!r} ({first.href!r}) is in "
                f"{crs0!r}; bands of one scene must share a CRS"
            )
        tolerance = max(res[0], res[1], finest[0])
        if any(abs(a - b) > tolerance for a, b in zip(bounds, bounds0, strict=True)):
            raise BandMismatchError(
                f"band {name!r} ({href!r}) covers {tuple(bounds)!r} but band {names[0]!r} covers "
                f"{tuple(bounds0)!r}; "
                "bands of one scene must have the same size and footprint"
            )
    return crs0, bounds0, finest

"""Seeded generators of small rasters for tests: scene folders, multi-band files and broken files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

UTM_45N = "EPSG:32645"
ORIGIN = (500_000.0, 2_800_000.0)
BAND_FILES = ("B02", "B03", "B04", "B08")


def write_band(path: Path, data: np.ndarray, *, crs: str = UTM_45N, origin=ORIGIN, res: float = 10.0,
               nodata: float | None = None, blocksize: int = 64) -> Path:
    """Write one uint16 band as a tiled GeoTIFF."""
    height, width = data.shape
    profile = {
        "driver": "GTiff", "dtype": "uint16", "count": 1, "width": width, "height": height, "crs": crs,
        "transform": from_origin(origin[0], origin[1], res, res), "tiled": True,
        "blockxsize": blocksize, "blockysize": blocksize, "compress": "deflate", "nodata": nodata,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype("uint16"), 1)
    return path


def scene_folder(folder: Path, *, size: int = 256, seed: int = 0, crs: str = UTM_45N, origin=ORIGIN,
                 res: float = 10.0, nodata: float | None = None) -> Path:
    """A folder of four per-band GeoTIFFs (B02, B03, B04, B08) holding seeded noise with a gradient."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, size, dtype=np.float32)[None, :] * 2000
    for i, name in enumerate(BAND_FILES):
        data = 500 + 300 * i + ramp + rng.integers(0, 200, (size, size))
        write_band(folder / f"{name}.tif", data, crs=crs, origin=origin, res=res, nodata=nodata)
    return folder


def multiband_file(path: Path, *, size: int = 128, seed: int = 0, count: int = 4) -> Path:
    """One GeoTIFF holding ``count`` bands."""
    rng = np.random.default_rng(seed)
    profile = {
        "driver": "GTiff", "dtype": "uint16", "count": count, "width": size, "height": size, "crs": UTM_45N,
        "transform": from_origin(*ORIGIN, 10.0, 10.0),
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(rng.integers(1, 3000, (count, size, size)).astype("uint16"))
    return path


def truncated_copy(source: Path, target: Path, keep_fraction: float = 0.5) -> Path:
    """Copy the first part of a raster file's bytes, as an interrupted download would."""
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep_fraction)])
    return target

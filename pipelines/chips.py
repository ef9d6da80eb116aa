"""Image chips of review sites: a small true-colour PNG around a site, for the reviewer to look at.

``fieldtruth review show RUN SITE --chip-out FILE`` uses :func:`write_site_chip`: it copies the run's
``chips/<site_id>.png`` when the scan left one, and otherwise cuts a chip from the scanned imagery listed
in ``run.json`` (``inputs.scenes[*].bands`` hrefs), reading only a small window around the site.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from PIL import Image
from rasterio.warp import transform as warp_transform
from rasterio.windows import Window

from fieldtruth.pipelines.errors import PipelineError
from fieldtruth.runfiles import RunFiles

log = logging.getLogger(__name__)

RGB = ("red", "green", "blue")


class ChipError(PipelineError, OSError):
    """No chip could be made for a site."""


def write_site_chip(run_dir: Path, site_id: str, lon: float, lat: float, out: Path, size_px: int = 96) -> str:
    """Write a PNG chip of a site to ``out``; return where it came from (a file or a scene id).

    Args:
        run_dir: The run folder.
        site_id: The site.
        lon: Longitude of the site (EPSG:4326).
        lat: Latitude of the site.
        out: The PNG file to write.
        size_px: Side of the chip in pixels when it is cut from imagery.

    Raises:
        ChipError: If there is no stored chip and no listed scene covers the site or can be read.
    """
    stored = RunFiles(run_dir).chip(site_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    if stored.is_file():
        shutil.copyfile(stored, out)
        return str(stored)
    scenes = _scenes(run_dir)
    problems = []
    for scene in scenes:
        try:
            rgb = _cut(scene, lon, lat, size_px)
        except (rasterio.errors.RasterioError, OSError, KeyError, ValueError) as exc:
            problems.append(f"{scene.get('id')!r}: {exc}")
            continue
        if rgb is not None:
            Image.fromarray(rgb, mode="RGB").save(out, format="PNG")
            return str(scene.get("id"))
    raise ChipError(
        f"expected a chip for site {site_id!r} in {str(stored.parent)!r} or a scene in run.json covering "
        f"({lon:.5f}, {lat:.5f}); found {len(scenes)} scene(s), none usable{': ' if problems else ''}"
        f"{'; '.join(problems)}. Check that the imagery of the scan is still at the paths run.json lists."
    )


def _scenes(run_dir: Path) -> list[dict[str, Any]]:
    try:
        doc = json.loads(RunFiles(run_dir).run_json.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ChipError(f"expected a readable run.json in {str(run_dir)!r}; {exc}. Run `fieldtruth scan`.") from exc
    scenes = (doc.get("inputs") or {}).get("scenes") or []
    return [s for s in scenes if isinstance(s, dict) and isinstance(s.get("bands"), dict)]


def _cut(scene: dict[str, Any], lon: float, lat: float, size_px: int) -> np.ndarray | None:
    """Read an RGB window centred on the site; None when the site is outside the scene."""
    bands = scene["bands"]
    names = [n for n in RGB if n in bands] or list(bands)[:3]
    layers = []
    for name in names:
        band = bands[name]
        with rasterio.open(band["href"]) as src:
            xs, ys = warp_transform("EPSG:4326", src.crs, [lon], [lat])
            row, col = src.index(xs[0], ys[0])
            if not (0 <= row < src.height and 0 <= col < src.width):
                return None
            half = size_px // 2
            window = Window(col - half, row - half, size_px, size_px)
            layers.append(src.read(int(band.get("index", 1)), window=window, boundless=True, fill_value=0))
    while len(layers) < 3:
        layers.append(layers[-1])
    return _stretch(np.stack(layers[:3], axis=-1).astype("float32"))


def _stretch(data: np.ndarray) -> np.ndarray:
    """2-98 percentile stretch of the valid pixels to uint8."""
    valid = data[data.sum(axis=-1) > 0]
    if valid.size == 0:
        return np.zeros(data.shape, dtype=np.uint8)
    low, high = np.percentile(valid, 2), np.percentile(valid, 98)
    scaled = (data - low) / max(float(high - low), 1e-6)
    return (np.clip(scaled, 0, 1) * 255).astype(np.uint8)

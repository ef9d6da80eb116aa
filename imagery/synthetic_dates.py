"""A later date of a synthetic scene: some kilns gone, some new, and optionally a cloud.

The later scene is the earlier one's pixels with a few changes, so a detector sees the same landscape
again: kilns *gone* are painted over with the ground around them (each band's median over a ring
around the kiln), kilns *added* are copies of kept kilns pasted on open ground (away from every other
site), and a *cloud* (a box of pixels set to 0 in every band, which a scan reads as no imagery, since the
scenes declare no nodata) hides part of the scene. The labels hold the sites of the later date, cloud
or not: what is there, not what can be seen. The same arguments give the same files.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from pathlib import Path

import numpy as np
import rasterio

from fieldtruth.imagery._synthetic_draw import Box
from fieldtruth.imagery._synthetic_layout import KILN, Site
from fieldtruth.imagery.synthetic import (
    BAND_FILES,
    SyntheticScene,
    _labels_geojson,
    _scene_json,
    _write_cog,
)

log = logging.getLogger(__name__)

PAD_PX = 3
"""Pixels around a kiln's box that go with it (painted over, or copied)."""
CLEAR_PX = 24
"""Pixels kept between a pasted kiln and any other site or the scene's edge."""


def later_date(scene: SyntheticScene, out_dir: Path, *, days: int = 90, remove: int = 3, add: int = 3,
               seed: int = 0, cloud: Box | None = None, within: Box | None = None) -> SyntheticScene:
    """Write a later date of ``scene`` to ``out_dir``.

    Args:
        scene: The earlier scene (as :func:`fieldtruth.imagery.synthetic.generate_scene` returned it).
        out_dir: The folder of the later scene (created if missing).
        days: Days after the earlier date.
        remove: Kilns of the earlier scene that are gone.
        add: New kilns (copies of kept ones on open ground).
        seed: Seed of which kilns go and where new ones appear.
        cloud: A box of pixels with no valid imagery (the sites under it stay in the labels).
        within: Where the changes happen (kilns gone and new ones), in pixels; the whole scene when None.

    Raises:
        ValueError: If a count is negative or larger than the scene allows, or ``days`` is not positive.
    """
    kilns = [s for s in scene.sites if s.label == KILN and (within is None or _inside(s.box, within))]
    if days < 1 or remove < 0 or add < 0 or remove > len(kilns) or (add and remove == len(kilns)):
        raise ValueError(f"expected days >= 1 and 0 <= remove < {len(kilns)} kilns (add >= 0); "
                         f"got days={days!r}, "
                         f"remove={remove!r}, add={add!r}")
    rng = np.random.default_rng(seed)
    img = np.stack([_read(scene.band_paths[name]) for name in BAND_FILES.values()])
    gone = {int(i) for i in rng.choice(len(kilns), size=remove, replace=False)}
    gone_sites = {kilns[i] for i in gone}
    kept = [s for s in scene.sites if s not in gone_sites]
    for i in sorted(gone):
        _paint_over(img, kilns[i].box)
    sources = [k for j, k in enumerate(kilns) if j not in gone]
    area = within or Box(0, 0, scene.size, scene.size)
    new = [_paste(img, sources[int(rng.integers(len(sources)))], kept, rng, area) for _ in range(add)]
    kept += new
    if cloud is not None:
        img[:, _rows(cloud), _cols(cloud)] = 0
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    band_paths = {}
    for band, (stem, name) in zip(img, BAND_FILES.items(), strict=True):
        band_paths[name] = out_dir / f"{stem}.tif"
        _write_cog(band_paths[name], band, scene.transform, scene.crs)
    acquired = (dt.date.fromisoformat(scene.acquired) + dt.timedelta(days=days)).isoformat()
    labels_path = out_dir / "labels.geojson"
    labels_path.write_text(json.dumps(_labels_geojson(kept, scene.transform, scene.crs)), encoding="utf-8")
    later = dataclasses.replace(scene, path=out_dir, acquired=acquired, sites=tuple(kept),
                                band_paths=band_paths, labels_path=labels_path,
                                scene_json_path=out_dir / "scene.json")
    described = _scene_json(later) | {"id": f"synthetic-seed{scene.seed}-{scene.size}-{acquired}"}
    later.scene_json_path.write_text(json.dumps(described, indent=1), encoding="utf-8")
    log.info("later date %s of synthetic scene seed %d: %d kiln(s) gone, %d new", acquired, scene.seed,
             remove, add)
    return later


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def _rows(box: Box, pad: int = 0) -> slice:
    return slice(max(int(np.floor(box.row0)) - pad, 0), int(np.ceil(box.row1)) + pad)


def _cols(box: Box, pad: int = 0) -> slice:
    return slice(max(int(np.floor(box.col0)) - pad, 0), int(np.ceil(box.col1)) + pad)


def _paint_over(img: np.ndarray, box: Box) -> None:
    """Fill a kiln's padded box with each band's median over a ring of ground around it."""
    inner = (_rows(box, PAD_PX), _cols(box, PAD_PX))
    outer = (_rows(box, 3 * PAD_PX), _cols(box, 3 * PAD_PX))
    ring = img[:, outer[0], outer[1]].astype(np.float64)
    mask = np.ones(ring.shape[1:], dtype=bool)
    mask[inner[0].start - outer[0].start:inner[0].stop - outer[0].start,
         inner[1].start - outer[1].start:inner[1].stop - outer[1].start] = False
    for band in range(img.shape[0]):
        img[band, inner[0], inner[1]] = np.median(ring[band][mask]).astype(img.dtype)


def _inside(box: Box, area: Box) -> bool:
    return area.row0 <= box.row0 and box.row1 <= area.row1 and area.col0 <= box.col0 and box.col1 <= area.col1


def _paste(img: np.ndarray, source: Site, sites: list[Site], rng: np.random.Generator, area: Box) -> Site:
    """Copy a kiln's padded patch to open ground inside ``area``; return the new site."""
    rows, cols = _rows(source.box, PAD_PX), _cols(source.box, PAD_PX)
    patch = img[:, rows, cols].copy()
    height, width = patch.shape[1:]
    for _ in range(1000):
        r0 = int(rng.integers(int(area.row0) + CLEAR_PX, int(area.row1) - height - CLEAR_PX))
        c0 = int(rng.integers(int(area.col0) + CLEAR_PX, int(area.col1) - width - CLEAR_PX))
        box = Box(r0 + source.box.row0 - rows.start, c0 + source.box.col0 - cols.start,
                  r0 + source.box.row1 - rows.start, c0 + source.box.col1 - cols.start)
        if all(_apart(box, s.box) for s in sites):
            img[:, r0:r0 + height, c0:c0 + width] = patch
            return Site(KILN, box)
    raise ValueError("found no open ground for a new kiln after 1,000 tries; add fewer kilns")


def _apart(a: Box, b: Box) -> bool:
    return (a.row1 + CLEAR_PX < b.row0 or b.row1 + CLEAR_PX < a.row0
            or a.col1 + CLEAR_PX < b.col0 or b.col1 + CLEAR_PX < a.col0)

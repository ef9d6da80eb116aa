"""Where things go in a synthetic scene: the landscape, look-alikes and targets, without overlaps.

Private to :mod:`fieldtruth.imagery.synthetic`. Returns the reflectance image and the labelled sites.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.ndimage import gaussian_filter

from fieldtruth.imagery._synthetic_draw import Box
from fieldtruth.imagery._synthetic_land import (
    River,
    draw_river,
    draw_roads,
    draw_settlement,
    land,
    make_river,
)
from fieldtruth.imagery._synthetic_sites import draw_camp, draw_kiln, draw_pond, draw_red_patch

KILN = "brick_kiln"
CAMP = "fishing_camp"


class Site(NamedTuple):
    """One labelled target: its class and its box in continuous pixel coordinates."""

    label: str
    box: Box

    @property
    def centre(self) -> tuple[float, float]:
        """(row, col) of the box centre."""
        return (self.box.row0 + self.box.row1) / 2, (self.box.col0 + self.box.col1) / 2


@dataclass(frozen=True)
class Counts:
    """How many of each thing to draw in a scene."""

    kilns: int
    camps: int
    villages: int
    hamlets: int
    ponds: int
    rimmed_ponds: int
    grey_rings: int
    red_patches: int

    @classmethod
    def for_size(cls, size: int, kilns: int | None, camps: int | None) -> Counts:
        """Counts proportional to the scene area (2048 x 2048 holds 40 kilns and 24 camps)."""
        f = (size / 2048) ** 2

        def n(full: int, least: int) -> int:
            return max(least, round(full * f))

        return cls(
            kilns=n(40, 3) if kilns is None else kilns, camps=n(24, 2) if camps is None else camps,
            villages=n(10, 1), hamlets=n(30, 2), ponds=n(70, 3), rimmed_ponds=n(35, 2),
            grey_rings=n(15, 1), red_patches=n(35, 2),
        )


class _Canvas:
    """The image being drawn, with the occupied area and the distance to the river."""

    def __init__(self, rng: np.random.Generator, img: np.ndarray, river: River) -> None:
        self.rng = rng
        self.img = img
        self.river = river
        self.shape: tuple[int, int] = img.shape[1:]
        self.busy = np.zeros(self.shape, dtype=bool)
        self.dist = river.distance(self.shape)

    def free(self, box: Box, pad: float) -> bool:
        """True when the padded box lies inside the image and touches nothing drawn so far."""
        r0, c0 = int(np.floor(box.row0 - pad)), int(np.floor(box.col0 - pad))
        r1, c1 = int(np.ceil(box.row1 + pad)), int(np.ceil(box.col1 + pad))
        if r0 < 0 or c0 < 0 or r1 > self.shape[0] or c1 > self.shape[1]:
            return False
        return not self.busy[r0:r1, c0:c1].any()

    def claim(self, box: Box, pad: float) -> None:
        """Mark the padded box as occupied."""
        r0, c0 = max(int(np.floor(box.row0 - pad)), 0), max(int(np.floor(box.col0 - pad)), 0)
        self.busy[r0 : int(np.ceil(box.row1 + pad)), c0 : int(np.ceil(box.col1 + pad))] = True

    def spot(
        self, radius: float, water_dist: tuple[float, float], tries: int = 400
    ) -> tuple[float, float] | None:
        """A free point whose ``radius`` box is ``water_dist`` (min, max) pixels from the river."""
        for _ in range(tries):
            cy, cx = (
                self.rng.uniform(radius, self.shape[0] - radius),
                self.rng.uniform(radius, self.shape[1] - radius),
            )
            d = self.dist[int(cy), int(cx)]
            if not water_dist[0] + radius <= d <= water_dist[1] + radius:
                continue
            if self.free(Box(cy - radius, cx - radius, cy + radius, cx + radius), 2.0):
                return cy, cx
        return None


def _settlements(canvas: _Canvas, counts: Counts) -> None:
    rng = canvas.rng
    big = max(canvas.shape)
    centres: list[tuple[float, float]] = []
    for _ in range(counts.villages):
        radius = rng.uniform(14, 34) * min(1.0, big / 1024 + 0.3)
        at = canvas.spot(radius + 4, (20, np.inf))
        if at is not None:
            centres.append(at)
            canvas.claim(draw_settlement(rng, canvas.img, *at, radius, 0.10), 4)
    anchors = (
        [(0.0, float(rng.uniform(0, big)))]
        + sorted(centres)
        + [(float(canvas.shape[0]), float(rng.uniform(0, big)))]
    )
    draw_roads(rng, canvas.img, anchors)
    for _ in range(counts.hamlets):
        radius = rng.uniform(3.5, 7.0)
        at = canvas.spot(radius + 4, (28, np.inf))
        if at is not None:
            canvas.claim(draw_settlement(rng, canvas.img, *at, radius, 0.22), 6)


def _distractors(canvas: _Canvas, counts: Counts) -> None:
    rng = canvas.rng
    jobs = [
        (None, counts.ponds),
        ("trees", counts.rimmed_ponds),
        ("grey_ring", counts.grey_rings),
        ("red", counts.red_patches),
    ]
    for kind, count in jobs:
        for _ in range(count):
            at = canvas.spot(11, (6, np.inf))
            if at is None:
                continue
            box = (
                draw_red_patch(rng, canvas.img, *at)
                if kind == "red"
                else draw_pond(rng, canvas.img, *at, kind)
            )
            canvas.claim(box, 8)


def _kilns(canvas: _Canvas, count: int) -> list[Site]:
    shadow_dir = float(canvas.rng.uniform(np.radians(200), np.radians(250)))
    sites = []
    for _ in range(count):
        at = canvas.spot(13, (14, np.inf))
        if at is None:
            continue
        box = draw_kiln(canvas.rng, canvas.img, *at, shadow_dir)
        canvas.claim(Box(at[0] - 12, at[1] - 12, at[0] + 12, at[1] + 12), 6)
        sites.append(Site(KILN, box))
    return sites


def _camps(canvas: _Canvas, count: int) -> list[Site]:
    rng, river = canvas.rng, canvas.river
    sites: list[Site] = []
    for _ in range(count * 40):
        if len(sites) >= count:
            break
        row0, side = float(rng.uniform(16, canvas.shape[0] - 30)), int(rng.choice((-1, 1)))
        cols = [river.centre[int(r)] + side * river.half_width[int(r)] for r in (row0, row0 + 11, row0 + 22)]
        area = Box(row0 - 2, min(cols) - 12, row0 + 24, max(cols) + 12)
        if (
            area.col0 < 4
            or area.col1 > canvas.shape[1] - 4
            or not canvas.free(_land_side(area, cols, side), 14)
        ):
            continue
        box = draw_camp(rng, canvas.img, river, row0, side)
        canvas.claim(box, 16)
        sites.append(Site(CAMP, box))
    return sites


def _land_side(area: Box, bank_cols: list[float], side: int) -> Box:
    """The part of a camp's search area on land (the river itself is never marked busy)."""
    if side < 0:
        return Box(area.row0, area.col0, area.row1, min(bank_cols))
    return Box(area.row0, max(bank_cols), area.row1, area.col1)


def compose(rng: np.random.Generator, size: int, counts: Counts) -> tuple[np.ndarray, list[Site]]:
    """Draw a whole scene: landscape, river, settlements, look-alikes, kilns and camps.

    Returns:
        uint16 ``(4, size, size)`` reflectance (blue, green, red, nir) and the labelled sites.
    """
    img = land(rng, (size, size))
    river = make_river(rng, size, size)
    canvas = _Canvas(rng, img, river)
    _settlements(canvas, counts)
    draw_river(rng, img, river)
    camps = _camps(canvas, counts.camps)
    kilns = _kilns(canvas, counts.kilns)
    _distractors(canvas, counts)
    for band in range(img.shape[0]):
        img[band] = gaussian_filter(img[band], sigma=0.5, mode="nearest")
    img *= 1.0 + 0.015 * rng.standard_normal(img.shape, dtype=np.float32)
    img += 12.0 * rng.standard_normal(img.shape, dtype=np.float32)
    sites = kilns + camps
    if rng.random() < 0.5:
        img = img.transpose(0, 2, 1)
        sites = [Site(s.label, Box(s.box.col0, s.box.row0, s.box.col1, s.box.row1)) for s in sites]
    out = np.clip(np.rint(img), 1, 65535).astype(np.uint16)
    return np.ascontiguousarray(out), sites

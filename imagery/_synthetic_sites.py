"""Targets and look-alikes of synthetic scenes (private to :mod:`fieldtruth.imagery.synthetic`).

Targets: Bull's trench brick kilns (a reddish oval ring about 12 x 6 pixels with a dark centre, in a
clay yard with stacks of drying bricks, some with a chimney shadow) and fishing camps (a cluster of
small bright huts and drying racks on a river bank). Distractors that share one cue but not all:
round and oval ponds (dark centre, no red ring), ponds ringed by trees (ring, wrong colour), grey rings,
filled red patches (red, no ring), and hamlets of bright roofs away from the water (huts, no shore).
"""

from __future__ import annotations

import numpy as np

from fieldtruth.imagery._synthetic_draw import (
    Box,
    ellipse_alpha,
    ellipse_extent,
    line_alpha,
    paint,
    rect_alpha,
    shade,
    spectrum,
)
from fieldtruth.imagery._synthetic_land import River


def draw_kiln(rng: np.random.Generator, img: np.ndarray, cy: float, cx: float, shadow_dir: float) -> Box:
    """Draw a Bull's trench kiln centred on (cy, cx); return the box of its oval (the label)."""
    shape = img.shape[1:]
    yard = rng.uniform(8.0, 11.0)
    paint(img, *ellipse_alpha(shape, cy, cx, yard, yard * rng.uniform(0.7, 1.0), rng.uniform(0, np.pi)),
          spectrum("kiln_yard", rng.uniform(0.9, 1.1)))
    for _ in range(int(rng.integers(2, 5))):
        ang = rng.uniform(0, 2 * np.pi)
        by, bx = cy + 7.5 * np.sin(ang), cx + 7.5 * np.cos(ang)
        tall = rng.random() < 0.5
        h, w = (rng.uniform(3, 5), 1.2) if tall else (1.2, rng.uniform(3, 5))
        paint(
            img,
            *rect_alpha(shape, Box(by - h / 2, bx - w / 2, by + h / 2, bx + w / 2)),
            spectrum("green_bricks"),
        )
    a, b = rng.uniform(5.6, 6.8), rng.uniform(2.9, 3.6)
    theta = rng.uniform(0, np.pi)
    thick = rng.uniform(1.3, 1.8)
    paint(
        img,
        *ellipse_alpha(shape, cy, cx, a - thick, b - thick, theta),
        spectrum("kiln_centre", rng.uniform(0.85, 1.15)),
    )
    paint(
        img,
        *ellipse_alpha(shape, cy, cx, a, b, theta, inner=(a - thick, b - thick)),
        spectrum("kiln_ring", rng.uniform(0.85, 1.15)),
    )
    if rng.random() < 0.6:
        length = rng.uniform(4.0, 7.0)
        end = (cy + length * np.sin(shadow_dir), cx + length * np.cos(shadow_dir))
        shade(img, *line_alpha(shape, (cy, cx), end, 1.0), 0.5)
    half_h, half_w = ellipse_extent(a, b, theta)
    return Box(cy - half_h, cx - half_w, cy + half_h, cx + half_w)


def _bank_col(river: River, row: float, side: int, offset: float) -> float:
    """Column ``offset`` pixels inland of the bank at ``row`` (side -1: left bank, +1: right bank)."""
    r = int(np.clip(row, 0, len(river.centre) - 1))
    return float(river.centre[r] + side * (river.half_width[r] + offset))


def draw_camp(rng: np.random.Generator, img: np.ndarray, river: River, row0: float, side: int) -> Box:
    """Draw a fishing camp on a river bank starting at ``row0``; return the box of its huts and racks."""
    shape = img.shape[1:]
    n_huts, step = int(rng.integers(4, 9)), rng.uniform(1.9, 2.6)
    length, depth = n_huts * step + 1, rng.uniform(3.5, 5.5)
    for r in np.arange(row0 - 1, row0 + length + 1, 1.0):
        c0, c1 = sorted((_bank_col(river, r, side, 0.0), _bank_col(river, r, side, depth + 3)))
        paint(img, *rect_alpha(shape, Box(r, c0, r + 1, c1)), spectrum("sand", rng.uniform(0.95, 1.05)))
    box: Box | None = None
    for i in range(n_huts):
        r = row0 + i * step + rng.uniform(-0.3, 0.3)
        h, w = rng.uniform(1.2, 1.8), rng.uniform(1.5, 2.5)
        inland = rng.uniform(0.5, 1.2) if i % 2 == 0 else rng.uniform(2.4, depth - 0.5)
        c = _bank_col(river, r, side, inland + w / 2)
        hut = Box(r, c - w / 2, r + h, c + w / 2)
        colour = spectrum("tarp" if rng.random() < 0.2 else "hut", rng.uniform(0.9, 1.1))
        paint(img, *rect_alpha(shape, hut), colour)
        box = hut if box is None else box.union(hut)
    for _ in range(int(rng.integers(0, 3))):
        r = row0 + rng.uniform(0, max(length - 5, 0.5))
        c = _bank_col(river, r, side, depth + rng.uniform(0.5, 2.0))
        paint(img, *line_alpha(shape, (r, c), (r + 5, c), 0.8), spectrum("rack"))
        box = (
            box.union(Box(r, c - 0.4, r + 5, c + 0.4)) if box is not None else Box(r, c - 0.4, r + 5, c + 0.4)
        )
    if box is None:  # pragma: no cover - at least four huts are always drawn
        raise RuntimeError("a fishing camp was drawn without huts")
    return box


def draw_pond(rng: np.random.Generator, img: np.ndarray, cy: float, cx: float, rim: str | None) -> Box:
    """A round or oval pond, optionally ringed by trees or a grey embankment."""
    shape = img.shape[1:]
    a = rng.uniform(3.0, 8.0)
    b = a * rng.uniform(0.5, 1.0)
    theta = rng.uniform(0, np.pi)
    if rim is not None:
        thick = rng.uniform(1.2, 2.2)
        paint(
            img,
            *ellipse_alpha(shape, cy, cx, a + thick, b + thick, theta, inner=(a, b)),
            spectrum(rim, rng.uniform(0.85, 1.1)),
        )
    paint(img, *ellipse_alpha(shape, cy, cx, a, b, theta), spectrum("pond", rng.uniform(0.8, 1.3)))
    half_h, half_w = ellipse_extent(a + 2.5, b + 2.5, theta)
    return Box(cy - half_h, cx - half_w, cy + half_h, cx + half_w)


def draw_red_patch(rng: np.random.Generator, img: np.ndarray, cy: float, cx: float) -> Box:
    """A filled reddish oval (brick stacks, red soil) the size of a kiln but without its dark centre."""
    shape = img.shape[1:]
    a, b, theta = rng.uniform(4.0, 7.5), rng.uniform(2.5, 4.5), rng.uniform(0, np.pi)
    paint(img, *ellipse_alpha(shape, cy, cx, a, b, theta), spectrum("kiln_ring", rng.uniform(0.85, 1.15)))
    half_h, half_w = ellipse_extent(a, b, theta)
    return Box(cy - half_h, cx - half_w, cy + half_h, cx + half_w)

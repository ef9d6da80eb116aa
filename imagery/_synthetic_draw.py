"""Drawing primitives and spectra for synthetic scenes (private to :mod:`fieldtruth.imagery.synthetic`).

Every drawing works on a float32 ``(4, h, w)`` reflectance image (blue, green, red, nir; x 10000) and
uses continuous pixel coordinates: pixel ``(r, c)`` spans ``[r, r + 1) x [c, c + 1)``, so its centre is
``(r + 0.5, c + 0.5)``. Shapes are anti-aliased by supersampling, so sub-pixel positions show.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: Reflectance x 10000 in (blue, green, red, nir), loosely after Sentinel-2 L2A over the Gangetic plain.
SPECTRA: dict[str, tuple[float, float, float, float]] = {
    "river": (950, 1050, 900, 430),
    "pond": (480, 540, 340, 170),
    "sand": (1450, 1650, 1850, 2150),
    "crop": (330, 640, 380, 3600),
    "crop_sparse": (520, 820, 720, 2600),
    "soil": (880, 1130, 1380, 1950),
    "fallow": (740, 990, 1130, 2300),
    "trees": (300, 540, 300, 2800),
    "roof_bright": (2450, 2550, 2650, 2950),
    "roof_grey": (1350, 1450, 1550, 1850),
    "roof_red": (880, 990, 1650, 1950),
    "road": (1250, 1350, 1450, 1650),
    "kiln_ring": (780, 980, 2050, 2250),
    "kiln_centre": (400, 430, 460, 560),
    "kiln_yard": (1000, 1180, 1580, 1850),
    "green_bricks": (1500, 1650, 1850, 2050),
    "hut": (2800, 3000, 3150, 3300),
    "tarp": (2300, 1900, 1300, 1500),
    "rack": (1700, 1780, 1850, 1950),
    "grey_ring": (1450, 1500, 1550, 1750),
}

_SUPERSAMPLE = 4


class Box(NamedTuple):
    """An axis-aligned box in continuous pixel coordinates (``row0 < row1``, ``col0 < col1``)."""

    row0: float
    col0: float
    row1: float
    col1: float

    def union(self, other: Box) -> Box:
        """Return the smallest box holding both boxes."""
        return Box(
            min(self.row0, other.row0), min(self.col0, other.col0),
            max(self.row1, other.row1), max(self.col1, other.col1),
        )


def spectrum(name: str, gain: float = 1.0) -> np.ndarray:
    """Return a named spectrum as a float32 ``(4,)`` array, scaled by ``gain``."""
    return np.asarray(SPECTRA[name], dtype=np.float32) * np.float32(gain)


def _patch_grid(
    cy: float, cx: float, radius: float, shape: tuple[int, int]
) -> tuple[slice, slice, np.ndarray, np.ndarray]:
    """Return the clipped window around a point and supersampled offsets (dy, dx) of its pixels."""
    r0 = max(int(np.floor(cy - radius)), 0)
    c0 = max(int(np.floor(cx - radius)), 0)
    r1 = min(int(np.ceil(cy + radius)) + 1, shape[0])
    c1 = min(int(np.ceil(cx + radius)) + 1, shape[1])
    sub = (np.arange(_SUPERSAMPLE, dtype=np.float32) + 0.5) / _SUPERSAMPLE
    ys = (np.arange(r0, r1, dtype=np.float32)[:, None] + sub[None, :]).reshape(-1) - cy
    xs = (np.arange(c0, c1, dtype=np.float32)[:, None] + sub[None, :]).reshape(-1) - cx
    return slice(r0, r1), slice(c0, c1), ys[:, None], xs[None, :]


def _coverage(inside: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Average a supersampled boolean grid back to per-pixel coverage in [0, 1]."""
    s = _SUPERSAMPLE
    return inside.reshape(rows, s, cols, s).mean(axis=(1, 3), dtype=np.float32)


def ellipse_alpha(
    shape: tuple[int, int],
    cy: float,
    cx: float,
    a: float,
    b: float,
    theta: float,
    inner: tuple[float, float] | None = None,
) -> tuple[slice, slice, np.ndarray]:
    """Coverage of a rotated ellipse (or of the ring between it and an inner ellipse).

    Args:
        shape: (rows, cols) of the image.
        cy: centre row (continuous). cx: centre column (continuous).
        a: semi-axis along ``theta`` (pixels). b: the other semi-axis.
        theta: orientation of ``a`` in radians, counter-clockwise from the column axis.
        inner: semi-axes of an inner ellipse to cut out (a ring), or None for a filled ellipse.

    Returns:
        The row and column slices of the window and the coverage in that window.
    """
    rs, cs, dy, dx = _patch_grid(cy, cx, max(a, b) + 1.0, shape)
    u = dx * np.cos(theta) - dy * np.sin(theta)
    v = dx * np.sin(theta) + dy * np.cos(theta)
    inside = (u / a) ** 2 + (v / b) ** 2 <= 1.0
    if inner is not None:
        inside &= (u / inner[0]) ** 2 + (v / inner[1]) ** 2 > 1.0
    rows, cols = rs.stop - rs.start, cs.stop - cs.start
    if rows <= 0 or cols <= 0:
        return rs, cs, np.zeros((max(rows, 0), max(cols, 0)), np.float32)
    return rs, cs, _coverage(inside, rows, cols)


def ellipse_extent(a: float, b: float, theta: float) -> tuple[float, float]:
    """Half height and half width of the bounding box of a rotated ellipse."""
    half_w = float(np.hypot(a * np.cos(theta), b * np.sin(theta)))
    half_h = float(np.hypot(a * np.sin(theta), b * np.cos(theta)))
    return half_h, half_w


def paint(img: np.ndarray, rs: slice, cs: slice, alpha: np.ndarray, colour: np.ndarray) -> None:
    """Blend ``colour`` into ``img[:, rs, cs]`` with per-pixel opacity ``alpha`` (in place)."""
    if alpha.size == 0:
        return
    window = img[:, rs, cs]
    window += alpha[None] * (colour[:, None, None] - window)


def shade(img: np.ndarray, rs: slice, cs: slice, alpha: np.ndarray, factor: float) -> None:
    """Darken (factor < 1) or brighten ``img[:, rs, cs]`` by ``factor`` weighted by ``alpha`` (in place)."""
    if alpha.size == 0:
        return
    img[:, rs, cs] *= 1.0 + alpha[None] * (factor - 1.0)


def rect_alpha(shape: tuple[int, int], box: Box) -> tuple[slice, slice, np.ndarray]:
    """Anti-aliased coverage of an axis-aligned box (partial pixels get partial coverage)."""
    r0, c0 = max(int(np.floor(box.row0)), 0), max(int(np.floor(box.col0)), 0)
    r1, c1 = min(int(np.ceil(box.row1)), shape[0]), min(int(np.ceil(box.col1)), shape[1])
    if r1 <= r0 or c1 <= c0:
        return slice(0, 0), slice(0, 0), np.zeros((0, 0), np.float32)
    rows = np.arange(r0, r1, dtype=np.float32)
    cols = np.arange(c0, c1, dtype=np.float32)
    wr = np.clip(np.minimum(rows + 1, box.row1) - np.maximum(rows, box.row0), 0, 1)
    wc = np.clip(np.minimum(cols + 1, box.col1) - np.maximum(cols, box.col0), 0, 1)
    return slice(r0, r1), slice(c0, c1), (wr[:, None] * wc[None, :]).astype(np.float32)


def line_alpha(
    shape: tuple[int, int], p0: tuple[float, float], p1: tuple[float, float], width: float
) -> tuple[slice, slice, np.ndarray]:
    """Anti-aliased coverage of a straight segment of the given width (pixels) from ``p0`` to ``p1``
    (row, col)."""
    (y0, x0), (y1, x1) = p0, p1
    cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
    half = float(np.hypot(y1 - y0, x1 - x0)) / 2
    rs, cs, dy, dx = _patch_grid(cy, cx, half + width, shape)
    rows, cols = rs.stop - rs.start, cs.stop - cs.start
    if rows <= 0 or cols <= 0:
        return rs, cs, np.zeros((max(rows, 0), max(cols, 0)), np.float32)
    angle = np.arctan2(y1 - y0, x1 - x0)
    along = dx * np.cos(angle) + dy * np.sin(angle)
    across = -dx * np.sin(angle) + dy * np.cos(angle)
    inside = (np.abs(along) <= half) & (np.abs(across) <= width / 2)
    return rs, cs, _coverage(inside, rows, cols)


def polyline(
    img: np.ndarray, points: np.ndarray, width: float, colour: np.ndarray, opacity: float = 1.0
) -> None:
    """Draw a polyline of ``(n, 2)`` (row, col) points, segment by segment."""
    for p0, p1 in zip(points[:-1], points[1:], strict=True):
        rs, cs, alpha = line_alpha(img.shape[1:], (p0[0], p0[1]), (p1[0], p1[1]), width)
        paint(img, rs, cs, np.minimum(alpha, 1.0) * opacity, colour)

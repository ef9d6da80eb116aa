"""Background of synthetic scenes: textured field parcels, a river with sand banks, villages, roads.

Private to :mod:`fieldtruth.imagery.synthetic`. Everything is vectorised numpy driven by one
``numpy.random.Generator``, so a seed gives the same landscape on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fieldtruth.imagery._synthetic_draw import Box, paint, polyline, rect_alpha, spectrum

_LAND_TYPES = ("crop", "crop", "crop_sparse", "soil", "fallow", "crop")


@dataclass(frozen=True)
class River:
    """A river flowing down the rows: centre column and half width per row (continuous pixels)."""

    centre: np.ndarray
    half_width: np.ndarray

    def water_mask(self, shape: tuple[int, int]) -> np.ndarray:
        """Boolean mask of river water on an image of ``shape``."""
        cols = np.arange(shape[1], dtype=np.float32)[None, :] + 0.5
        return np.abs(cols - self.centre[:, None]) < self.half_width[:, None]

    def distance(self, shape: tuple[int, int]) -> np.ndarray:
        """Horizontal distance (pixels) of every pixel centre to the nearest bank; negative in the water."""
        cols = np.arange(shape[1], dtype=np.float32)[None, :] + 0.5
        return np.abs(cols - self.centre[:, None]) - self.half_width[:, None]


def fractal_noise(
    rng: np.random.Generator, shape: tuple[int, int], beta: float, min_period: float = 2.0
) -> np.ndarray:
    """Zero-mean, unit-variance noise with a ``1 / f**beta`` power spectrum (FFT synthesis).

    Args:
        rng: the random generator.
        shape: (rows, cols).
        beta: spectral slope; larger is smoother.
        min_period: shortest period kept (pixels).
    """
    white = rng.standard_normal(shape, dtype=np.float32)
    spec = np.fft.rfft2(white)
    fy = np.fft.fftfreq(shape[0]).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(shape[1]).astype(np.float32)[None, :]
    f = np.sqrt(fy**2 + fx**2)
    f[0, 0] = 1.0
    spec *= (f ** (-beta / 2)) * (f <= 1.0 / min_period)
    spec[0, 0] = 0.0
    field = np.fft.irfft2(spec, s=shape).astype(np.float32)
    return field / max(float(field.std()), 1e-6)


def _parcel_ids(rng: np.random.Generator, shape: tuple[int, int], theta: float) -> tuple[np.ndarray, int]:
    """Parcel index of every pixel on a rotated grid of random strips."""
    rows, cols = shape
    yy = np.arange(rows, dtype=np.float32)[:, None]
    xx = np.arange(cols, dtype=np.float32)[None, :]
    u = xx * np.cos(theta) + yy * np.sin(theta)
    v = -xx * np.sin(theta) + yy * np.cos(theta)
    span = rows + cols
    cuts_u = -span + np.cumsum(rng.uniform(14, 42, size=int(2 * span / 14) + 2))
    cuts_v = -span + np.cumsum(rng.uniform(10, 30, size=int(2 * span / 10) + 2))
    iu = np.searchsorted(cuts_u, u).astype(np.int32)
    iv = np.searchsorted(cuts_v, v).astype(np.int32)
    n_v = len(cuts_v) + 1
    return iu * n_v + iv, (len(cuts_u) + 1) * n_v


def land(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Field parcels of crops, soil and fallow, in two orientations, with texture and bunds.

    Returns:
        float32 ``(4, rows, cols)`` reflectance.
    """
    region = fractal_noise(rng, shape, beta=3.5, min_period=64) > 0
    ids_a, n_a = _parcel_ids(rng, shape, rng.uniform(0, np.pi / 2))
    ids_b, n_b = _parcel_ids(rng, shape, rng.uniform(0, np.pi / 2))
    ids = np.where(region, ids_a, ids_b + n_a)
    n = n_a + n_b
    kinds = rng.integers(0, len(_LAND_TYPES), size=n)
    table = np.stack([spectrum(k) for k in _LAND_TYPES])[kinds]
    table *= rng.uniform(0.85, 1.15, size=(n, 1)).astype(np.float32)
    img = np.ascontiguousarray(np.moveaxis(table[ids], -1, 0), dtype=np.float32)
    texture = (
        1.0 + 0.07 * fractal_noise(rng, shape, beta=2.0) + 0.04 * rng.standard_normal(shape, dtype=np.float32)
    )
    img *= texture[None]
    bund = np.zeros(shape, dtype=bool)
    bund[1:, :] |= ids[1:, :] != ids[:-1, :]
    bund[:, 1:] |= ids[:, 1:] != ids[:, :-1]
    img[:, bund] *= 0.94
    return img


def make_river(rng: np.random.Generator, rows: int, cols: int) -> River:
    """A meandering river down the rows, placed in the middle half of the columns."""
    r = np.arange(rows, dtype=np.float32) + 0.5
    scale = max(rows, 256)
    centre = cols * rng.uniform(0.35, 0.65) + np.zeros(rows, np.float32)
    for period, amp in ((1.0, 0.06), (0.45, 0.03), (0.2, 0.012)):
        centre += amp * scale * np.sin(2 * np.pi * r / (period * scale) + rng.uniform(0, 2 * np.pi))
    width_scale = min(1.0, cols / 1024)
    half = (9 + 14 * width_scale) * (
        1 + 0.35 * np.sin(2 * np.pi * r / (0.6 * scale) + rng.uniform(0, 2 * np.pi))
    )
    return River(centre.astype(np.float32), half.astype(np.float32))


def draw_river(rng: np.random.Generator, img: np.ndarray, river: River) -> np.ndarray:
    """Paint sand banks and turbid water; return the water mask."""
    shape = img.shape[1:]
    dist = river.distance(shape)
    sandy = fractal_noise(rng, shape, beta=3.0, min_period=32) > 0.6
    sand = (dist >= 0) & (dist < 4 + 3 * sandy) & sandy
    img[:, sand] = spectrum("sand")[:, None] * rng.uniform(0.92, 1.08, size=int(sand.sum())).astype(
        np.float32
    )
    water = dist < 0
    depth = np.clip(-dist / 6.0, 0, 1)[water]
    river_col = spectrum("river")[:, None]
    edge = 0.5 * (img[:, water] + river_col)
    img[:, water] = edge + depth[None] * (river_col - edge)
    return water


def draw_roads(rng: np.random.Generator, img: np.ndarray, anchors: list[tuple[float, float]]) -> None:
    """Roads: gently bent polylines linking consecutive anchors (village centres, scene edges)."""
    colour = spectrum("road")
    for (y0, x0), (y1, x1) in zip(anchors[:-1], anchors[1:], strict=True):
        t = np.linspace(0, 1, 12, dtype=np.float32)[:, None]
        pts = (1 - t) * np.array([y0, x0], np.float32) + t * np.array([y1, x1], np.float32)
        pts[1:-1] += rng.normal(0, 6, size=(10, 2)).astype(np.float32)
        polyline(img, pts, width=float(rng.uniform(1.0, 1.8)), colour=colour, opacity=0.85)


def draw_settlement(
    rng: np.random.Generator, img: np.ndarray, cy: float, cx: float, radius: float, density: float
) -> Box:
    """A village or hamlet: tree cover and roofs (bright, grey and red brick) around a centre.

    Returns:
        The box the settlement covers.
    """
    shape = img.shape[1:]
    trees = spectrum("trees")
    for _ in range(max(2, int(radius**2 / 30))):
        ty, tx = cy + rng.normal(0, radius / 2), cx + rng.normal(0, radius / 2)
        paint(img, *rect_alpha(shape, Box(ty - 2, tx - 2, ty + 2, tx + 2)), trees)
    roofs = ("roof_bright", "roof_grey", "roof_red", "roof_bright", "roof_grey")
    for _ in range(max(3, int(density * radius**2))):
        ang, dist = rng.uniform(0, 2 * np.pi), radius * np.sqrt(rng.uniform(0, 1))
        ry, rx = cy + dist * np.sin(ang), cx + dist * np.cos(ang)
        h, w = rng.uniform(1.5, 4.0), rng.uniform(1.5, 4.0)
        colour = spectrum(roofs[rng.integers(0, len(roofs))], rng.uniform(0.85, 1.15))
        paint(img, *rect_alpha(shape, Box(ry, rx, ry + h, rx + w)), colour)
    return Box(cy - radius - 3, cx - radius - 3, cy + radius + 5, cx + radius + 5)

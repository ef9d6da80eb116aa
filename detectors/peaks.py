"""Peaks of a batch of heatmaps: found where the heatmaps are (the GPU or the CPU), refined on the CPU.

On a GPU only the peaks travel back: the best class per cell, the max-pool suppression, the threshold and
the 3 x 3 neighbourhoods of the peaks (and their predicted box sizes) are computed on the device, and the
few kept cells are copied to the CPU, where their sub-cell positions are refined in float64. Copying whole
heatmaps back and searching them on one CPU thread cost more than the GPU's forward pass (issue 21).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

#: Offsets of a 3 x 3 neighbourhood's rows (and columns), in cells.
_OFFSETS = np.array([-1.0, 0.0, 1.0])


class Peak(NamedTuple):
    """A local maximum of a heatmap: class channel, sub-cell position (cell units), score, and the box size
    (height, width in pixels) predicted at its cell (NaN for a model without a size head)."""

    channel: int
    row: float
    col: float
    score: float
    height: float = math.nan
    width: float = math.nan


def find_peaks(
    heat: torch.Tensor, threshold: float, min_distance: int, sizes: torch.Tensor | None = None,
) -> list[list[Peak]]:
    """Local maxima of each of ``n`` probability heatmaps ``(n, classes, h, w)``, by max-pool suppression.

    A cell is a peak when its best class score is >= ``threshold`` and is the largest within
    ``min_distance`` cells (any class). Its position is refined to the score-weighted centroid of its
    3 x 3 neighbourhood in its class channel (negative scores count as 0).

    Args:
        heat: probabilities ``(n, classes, h, w)``, on any device.
        threshold: minimum score.
        min_distance: suppression radius in cells (>= 1).
        sizes: predicted box (height, width) in pixels per cell, ``(n, 2, h, w)`` on the same device; each
            peak takes the size at its refined position's nearest cell. None: no sizes.

    Returns:
        For each heatmap, its peaks sorted by decreasing score (ties in row-major order).
    """
    if heat.ndim != 4:
        raise ValueError(f"heatmaps must be (n, classes, h, w), got shape {tuple(heat.shape)!r}")
    best, channel = heat.max(dim=1)
    radius = max(int(min_distance), 1)
    pooled = F.max_pool2d(best[:, None], 2 * radius + 1, stride=1, padding=radius)[:, 0]
    image, row, col = torch.nonzero((best >= threshold) & (best == pooled), as_tuple=True)
    steps = torch.arange(3, device=heat.device)
    rows, cols = row[:, None, None] + steps[:, None], col[:, None, None] + steps  # in the padded map
    k = channel[image, row, col]
    windows = F.pad(heat, (1, 1, 1, 1))[image[:, None, None], k[:, None, None], rows, cols]
    found = [image, row, col, k, best[image, row, col], windows]
    if sizes is not None:
        both = torch.arange(2, device=heat.device)[:, None, None]
        padded = F.pad(sizes, (1, 1, 1, 1))
        found.append(padded[image[:, None, None, None], both, rows[:, None], cols[:, None]])
    return _refine(heat.shape[0], heat.shape[2:], *(t.cpu().numpy() for t in found))


def _refine(
    n: int, shape: torch.Size, image: np.ndarray, row: np.ndarray, col: np.ndarray, channel: np.ndarray,
    score: np.ndarray, windows: np.ndarray, size_windows: np.ndarray | None = None,
) -> list[list[Peak]]:
    """Sub-cell positions (float64 centroids of the 3 x 3 windows) and box sizes of the kept cells."""
    weights = windows.astype(np.float64).clip(min=0)
    total = weights.sum(axis=(1, 2))
    total[total == 0] = 1.0
    rows = row + weights.sum(axis=2) @ _OFFSETS / total
    cols = col + weights.sum(axis=1) @ _OFFSETS / total
    peaks: list[list[Peak]] = [[] for _ in range(n)]
    h, w = shape
    for i in range(len(image)):
        r, c = float(rows[i]), float(cols[i])
        height = width = math.nan
        if size_windows is not None:  # the nearest cell, inside the map, is in the window
            dr = min(max(round(r), 0), h - 1) - int(row[i]) + 1
            dc = min(max(round(c), 0), w - 1) - int(col[i]) + 1
            height, width = float(size_windows[i, 0, dr, dc]), float(size_windows[i, 1, dr, dc])
        peaks[int(image[i])].append(Peak(int(channel[i]), r, c, float(score[i]), height, width))
    for chip in peaks:
        chip.sort(key=lambda p: -p.score)
    return peaks


def extract_peaks(heat: torch.Tensor, threshold: float, min_distance: int) -> list[Peak]:
    """:func:`find_peaks` of one heatmap ``(classes, h, w)`` without box sizes."""
    if heat.ndim != 3:
        raise ValueError(f"heatmap must be (classes, h, w), got shape {tuple(heat.shape)!r}")
    return find_peaks(heat[None], threshold, min_distance)[0]


def suppress_inside_boxes(peaks: list[Peak], stride: int, shrink: float = 0.5) -> list[Peak]:
    """Drop peaks lying inside the predicted box of a stronger kept peak (one detection per large site).

    Args:
        peaks: peaks sorted by decreasing score, with their box sizes.
        stride: output stride (pixels per cell).
        shrink: fraction of the half box within which a weaker peak counts as the same site.
    """
    kept: list[Peak] = []
    for peak in peaks:
        if any(abs(peak.row - k.row) * stride < shrink * k.height and abs(peak.col - k.col) * stride
               < shrink * k.width for k in kept):
            continue
        kept.append(peak)
    return kept

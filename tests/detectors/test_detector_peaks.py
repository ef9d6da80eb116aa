"""Peaks of batches of heatmaps: the same as a plain per-cell search, whatever the batch; box sizes at the
refined position's cell."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fieldtruth.detectors.peaks import Peak, extract_peaks, find_peaks


def _plain_peaks(heat: np.ndarray, threshold: float, radius: int) -> list[Peak]:
    """The definition, cell by cell: best class >= threshold and the largest within ``radius`` cells; the
    position is the centroid of the 3 x 3 neighbourhood (outside the map counts as 0)."""
    best, channel = heat.max(axis=0), heat.argmax(axis=0)
    h, w = best.shape
    peaks = []
    for r in range(h):
        for c in range(w):
            around = best[max(r - radius, 0) : r + radius + 1, max(c - radius, 0) : c + radius + 1]
            if best[r, c] < threshold or best[r, c] < around.max():
                continue
            k = channel[r, c]
            window = np.zeros((3, 3))
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    if 0 <= r + dr < h and 0 <= c + dc < w:
                        window[dr + 1, dc + 1] = max(heat[k, r + dr, c + dc], 0.0)
            total = window.sum() or 1.0
            peaks.append(Peak(int(k), r + (window.sum(axis=1) @ [-1, 0, 1]) / total,
                              c + (window.sum(axis=0) @ [-1, 0, 1]) / total, float(best[r, c])))
    return sorted(peaks, key=lambda p: -p.score)


def _smooth_heatmaps(n: int, classes: int, h: int, w: int, seed: int) -> torch.Tensor:
    """Random blobby probability maps: many peaks, some at the borders, ties unlikely."""
    noise = torch.rand(n * classes, 1, h, w, generator=torch.Generator().manual_seed(seed))
    return F.avg_pool2d(noise, 3, stride=1, padding=1).reshape(n, classes, h, w) ** 3


@pytest.mark.parametrize("radius", [1, 3])
def test_batched_peaks_are_the_plain_search_of_each_heatmap(radius: int) -> None:
    heat = _smooth_heatmaps(3, 2, 37, 50, seed=radius)
    found = find_peaks(heat, threshold=0.15, min_distance=radius)
    assert sum(map(len, found)) > 20
    for one, peaks in zip(heat, found, strict=True):
        expected = _plain_peaks(one.double().numpy(), 0.15, radius)
        assert [p[::3] for p in peaks] == [(q.channel, pytest.approx(q.score)) for q in expected]
        for p, q in zip(peaks, expected, strict=True):
            assert (p.row, p.col) == pytest.approx((q.row, q.col), abs=1e-6)
        assert extract_peaks(one, 0.15, radius) == peaks


def test_box_sizes_are_read_at_the_cell_nearest_each_refined_peak() -> None:
    heat = torch.zeros(1, 1, 8, 9)
    heat[0, 0, 0, 4], heat[0, 0, 1, 4] = 0.9, 0.6  # refined to row 0.4: cell 0
    heat[0, 0, 5, 0], heat[0, 0, 5, 1] = 0.9, 0.85  # refined to col ~0.49: still cell 0
    heat[0, 0, 7, 7], heat[0, 0, 7, 8], heat[0, 0, 6, 8] = 0.7, 0.69, 0.69  # pulled past col 7.5: cell 8
    rows, cols = torch.meshgrid(torch.arange(8.0), torch.arange(9.0), indexing="ij")
    sizes = torch.stack([rows * 100 + cols, cols * 100 + rows])[None]  # each cell's own value
    peaks = find_peaks(heat, threshold=0.5, min_distance=1, sizes=sizes)[0]
    assert len(peaks) == 3
    for p in peaks:
        r, c = min(max(round(p.row), 0), 7), min(max(round(p.col), 0), 8)
        assert (p.height, p.width) == (r * 100 + c, c * 100 + r)
    assert {(round(p.row), round(p.col)) for p in peaks} == {(0, 4), (5, 0), (7, 8)}
    assert all(np.isnan(p.height) for p in find_peaks(heat, 0.5, 1)[0])


def test_a_heatmap_of_another_shape_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\(n, classes, h, w\)"):
        find_peaks(torch.zeros(2, 5, 5), 0.5, 1)

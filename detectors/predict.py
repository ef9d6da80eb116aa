"""Running a detector on pixels: normalise with the card, forward, and turn the heatmap into points.

Coordinates: :class:`PixelDetection` ``row`` and ``col`` are continuous pixel coordinates of the chip
handed in (pixel ``(r, c)`` spans ``[r, r + 1)``; its centre is ``(r + 0.5, c + 0.5)``), so a point's CRS
position is ``chip.transform * (col, row)``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from fieldtruth.detectors.bundle import LoadedBundle
from fieldtruth.detectors.card import ModelCard
from fieldtruth.detectors.device import device_of
from fieldtruth.detectors.errors import InputMismatchError
from fieldtruth.detectors.model import output_stride

log = logging.getLogger(__name__)


class PixelDetection(NamedTuple):
    """One detected site on a chip: continuous pixel position, score in [0, 1], class."""

    row: float
    col: float
    score: float
    label: str


class Peak(NamedTuple):
    """A local maximum of a heatmap: class channel, sub-cell position (cell units), score."""

    channel: int
    row: float
    col: float
    score: float


def normalise(card: ModelCard, data: np.ndarray, valid: np.ndarray) -> torch.Tensor:
    """Check the input against the card, fill invalid pixels with the band means, standardise.

    Args:
        card: the model card (band order, normalisation statistics).
        data: float ``(bands, h, w)`` raw values in ``card.bands`` order.
        valid: bool ``(h, w)``.

    Returns:
        float32 tensor ``(1, bands, h, w)``.

    Raises:
        InputMismatchError: wrong number of bands or a mask of another shape.
    """
    if data.ndim != 3 or data.shape[0] != len(card.bands):
        raise InputMismatchError(
            f"detector expects {len(card.bands)} band(s) {card.bands!r} as (bands, h, w); got an array of "
            f"shape {data.shape!r}; read the chip with the card's bands, in its order"
        )
    if valid.shape != data.shape[1:]:
        raise InputMismatchError(
            f"validity mask of shape {valid.shape!r} does not match the data {data.shape!r}")
    mean = np.asarray(card.norm_mean, dtype=np.float32)[:, None, None]
    std = np.asarray(card.norm_std, dtype=np.float32)[:, None, None]
    x = np.where(valid[None], data.astype(np.float32, copy=False), mean)
    x = np.nan_to_num((x - mean) / std, nan=0.0, posinf=0.0, neginf=0.0)
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None]


def extract_peaks(heat: torch.Tensor, threshold: float, min_distance: int) -> list[Peak]:
    """Local maxima of a ``(classes, h, w)`` probability heatmap, by max-pool non-maximum suppression.

    A cell is a peak when its best class score is >= ``threshold`` and is the largest within
    ``min_distance`` cells (any class). Its position is refined to the score-weighted centroid of its
    3 x 3 neighbourhood in its class channel.

    Args:
        heat: probabilities ``(classes, h, w)``.
        threshold: minimum score.
        min_distance: suppression radius in cells (>= 1).
    """
    if heat.ndim != 3:
        raise ValueError(f"heatmap must be (classes, h, w), got shape {tuple(heat.shape)!r}")
    best, channel = heat.max(dim=0)
    radius = max(int(min_distance), 1)
    pooled = F.max_pool2d(best[None, None], 2 * radius + 1, stride=1, padding=radius)[0, 0]
    keep = (best >= threshold) & (best == pooled)
    rows, cols = torch.nonzero(keep, as_tuple=True)
    padded = F.pad(heat, (1, 1, 1, 1))
    offsets = torch.tensor([-1.0, 0.0, 1.0])
    peaks = []
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        k = int(channel[r, c])
        window = padded[k, r : r + 3, c : c + 3].clamp(min=0)
        total = float(window.sum()) or 1.0
        dr = float((window.sum(dim=1) * offsets).sum()) / total
        dc = float((window.sum(dim=0) * offsets).sum()) / total
        peaks.append(Peak(k, r + dr, c + dc, float(best[r, c])))
    peaks.sort(key=lambda p: -p.score)
    return peaks


def heads(
    bundle: LoadedBundle, data: np.ndarray, valid: np.ndarray,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Class probabilities ``(classes, ceil(h / stride), ceil(w / stride))`` and box sizes ``(2, ...)``
    in pixels (height, width; None when the model has no size head) for a chip of raw values."""
    heat, sizes = forward(bundle, normalise(bundle.card, data, valid))
    return heat[0], (None if sizes is None else sizes[0])


@torch.inference_mode()
def forward(bundle: LoadedBundle, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Probabilities ``(n, classes, ...)`` and box sizes ``(n, 2, ...)`` (or None) of a batch of normalised
    chips, computed on the network's device in the bundle's precision and returned on the CPU in float32."""
    network = bundle.network
    device = device_of(network)
    x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
    reduced = bundle.runner is not None and bundle.precision == "bfloat16"
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=reduced):
        out = network(x)
    logits = out.heatmap if hasattr(out, "heatmap") else out
    size = getattr(out, "size", None)
    heat = torch.sigmoid(logits).float().cpu()
    return heat, (None if size is None else torch.exp(size.clamp(max=6.0)).float().cpu())


def heatmap(bundle: LoadedBundle, data: np.ndarray, valid: np.ndarray) -> torch.Tensor:
    """Class probabilities ``(classes, ceil(h / stride), ceil(w / stride))`` for a chip of raw values."""
    return heads(bundle, data, valid)[0]


def suppress_inside_boxes(
    peaks: list[Peak], sizes: torch.Tensor, stride: int, shrink: float = 0.5,
) -> list[Peak]:
    """Drop peaks lying inside the predicted box of a stronger kept peak (one detection per large site).

    Args:
        peaks: peaks sorted by decreasing score.
        sizes: predicted box (height, width) in pixels per cell, ``(2, h, w)``.
        stride: output stride (pixels per cell).
        shrink: fraction of the half box within which a weaker peak counts as the same site.
    """
    kept: list[tuple[Peak, float, float]] = []
    h, w = sizes.shape[1:]
    for peak in peaks:
        if any(abs(peak.row - k.row) * stride < hr and abs(peak.col - k.col) * stride < wr
               for k, hr, wr in kept):
            continue
        r, c = min(max(round(peak.row), 0), h - 1), min(max(round(peak.col), 0), w - 1)
        kept.append((peak, shrink * float(sizes[0, r, c]), shrink * float(sizes[1, r, c])))
    return [k for k, _, _ in kept]


def detect_array(
    bundle: LoadedBundle,
    data: np.ndarray,
    valid: np.ndarray,
    *,
    threshold: float | None = None,
    min_distance_px: int | None = None,
) -> list[PixelDetection]:
    """Detect sites on one chip of raw band values.

    Args:
        bundle: a loaded detector.
        data: float32 ``(bands, h, w)`` raw values in ``bundle.card.bands`` order (not normalised).
        valid: bool ``(h, w)``, True where every band holds data; no detection is reported on invalid pixels.
        threshold: score threshold; the card's operating threshold when None.
        min_distance_px: minimum distance between detections in pixels; the card's when None.

    Returns:
        Detections sorted by decreasing score.

    Raises:
        InputMismatchError: the data do not have the card's band count, or the mask's shape differs.
    """
    card = bundle.card
    if min_distance_px is not None:
        card = dataclasses.replace(card, min_distance_px=int(min_distance_px))
    return detect_array_each(bundle, [card], data, valid, threshold=threshold)[0]


def detect_array_each(
    bundle: LoadedBundle, cards: Sequence[ModelCard], data: np.ndarray, valid: np.ndarray, *,
    threshold: float | None = None,
) -> list[list[PixelDetection]]:
    """:func:`detect_array` for each of several cards differing in their decoding (threshold, peak
    suppression) over one forward pass: the detections of each card, in order."""
    if not valid.any():
        _ = normalise(bundle.card, data, valid)  # still validate the input
        return [[] for _ in cards]
    if hasattr(bundle.model, "detect"):
        return [_box_detections(bundle, data, valid, _threshold(card, threshold)) for card in cards]
    heat, sizes = heads(bundle, data, valid)
    stride = output_stride(bundle.model)
    return [_decode(card, stride, heat, sizes, valid, _threshold(card, threshold)) for card in cards]


def detect_arrays(
    bundle: LoadedBundle, chips: Sequence[tuple[np.ndarray, np.ndarray]], *, batch: int = 1,
) -> list[list[PixelDetection]]:
    """:func:`detect_array` at the card's settings for several chips ``(data, valid)``; chips of one shape
    pass through the network together, ``batch`` at a time (on a GPU, where one pass of several tiles is
    cheaper than several passes). The detections of each chip, in order."""
    if batch <= 1 or hasattr(bundle.network, "detect"):
        return [detect_array(bundle, data, valid) for data, valid in chips]
    found: list[list[PixelDetection]] = [[] for _ in chips]
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, (data, valid) in enumerate(chips):
        if valid.any():
            by_shape.setdefault(data.shape, []).append(i)
        else:
            _ = normalise(bundle.card, data, valid)  # still validate the input
    stride, card = output_stride(bundle.network), bundle.card
    for members in by_shape.values():
        for first in range(0, len(members), batch):
            group = members[first : first + batch]
            x = torch.cat([normalise(card, *chips[i]) for i in group])
            heat, sizes = forward(bundle, x)
            for k, i in enumerate(group):
                found[i] = _decode(card, stride, heat[k], None if sizes is None else sizes[k], chips[i][1],
                                   card.threshold)
    return found


def _threshold(card: ModelCard, threshold: float | None) -> float:
    return card.threshold if threshold is None else float(threshold)


def _decode(
    card: ModelCard, stride: int, heat: torch.Tensor, sizes: torch.Tensor | None, valid: np.ndarray,
    threshold: float,
) -> list[PixelDetection]:
    """Peaks of a heatmap above ``threshold``, suppressed as the card says, as chip pixel detections."""
    peaks = extract_peaks(heat, threshold, max(1, round(card.min_distance_px / stride)))
    if sizes is not None:
        peaks = suppress_inside_boxes(peaks, sizes, stride, card.box_suppression)
    h, w = valid.shape
    out = []
    for peak in peaks:
        row = min(max((peak.row + 0.5) * stride, 0.0), h - 1e-3)
        col = min(max((peak.col + 0.5) * stride, 0.0), w - 1e-3)
        if valid[int(row), int(col)]:
            out.append(PixelDetection(row, col, peak.score, card.classes[peak.channel]))
    return out


def _box_detections(
    bundle: LoadedBundle, data: np.ndarray, valid: np.ndarray, threshold: float,
) -> list[PixelDetection]:
    """Centres of a box detector's boxes (e.g. FCOS) with score >= threshold, on valid pixels."""
    h, w = valid.shape
    out = []
    for row, col, score, k in bundle.model.detect(normalise(bundle.card, data, valid)):
        row, col = min(max(row, 0.0), h - 1e-3), min(max(col, 0.0), w - 1e-3)
        if score >= threshold and valid[int(row), int(col)]:
            out.append(PixelDetection(row, col, score, bundle.card.classes[k]))
    out.sort(key=lambda d: -d.score)
    return out


def detect_scene(
    bundle: LoadedBundle,
    data: np.ndarray,
    valid: np.ndarray,
    *,
    tile: int = 512,
    halo: int = 32,
    threshold: float | None = None,
) -> list[PixelDetection]:
    """Detect over a whole in-memory scene in tiles with a halo, as a scan does (for evaluation).

    Each tile's detections are kept only inside its core, so every point comes from exactly one tile.

    Args:
        bundle: a loaded detector.
        data: float32 ``(bands, H, W)`` raw values of the whole scene.
        valid: bool ``(H, W)``.
        tile: core size in pixels.
        halo: pixels read around each core.
        threshold: score threshold (the card's when None).
    """
    return detect_scene_each(bundle, [bundle.card], data, valid, tile=tile, halo=halo, threshold=threshold)[0]


def detect_scene_each(
    bundle: LoadedBundle, cards: Sequence[ModelCard], data: np.ndarray, valid: np.ndarray, *,
    tile: int = 512, halo: int = 32, threshold: float | None = None,
) -> list[list[PixelDetection]]:
    """:func:`detect_scene` for each of several cards differing in their decoding, one forward pass per tile
    (choosing a card's threshold and suppression together costs one pass, not one per choice)."""
    if tile < 1 or halo < 0:
        raise ValueError(f"tile must be >= 1 and halo >= 0, got {tile!r}, {halo!r}")
    height, width = valid.shape
    found: list[list[PixelDetection]] = [[] for _ in cards]
    for r0 in range(0, height, tile):
        for c0 in range(0, width, tile):
            hr0, hc0 = max(r0 - halo, 0), max(c0 - halo, 0)
            hr1, hc1 = min(r0 + tile + halo, height), min(c0 + tile + halo, width)
            chips = detect_array_each(bundle, cards, data[:, hr0:hr1, hc0:hc1], valid[hr0:hr1, hc0:hc1],
                                      threshold=threshold)
            for kept, chip in zip(found, chips, strict=True):
                for d in chip:
                    row, col = d.row + hr0, d.col + hc0
                    if r0 <= row < r0 + tile and c0 <= col < c0 + tile:
                        kept.append(PixelDetection(row, col, d.score, d.label))
    for kept in found:
        kept.sort(key=lambda d: -d.score)
    return found


# --- For the scan's heatmap (fieldtruth.pipelines.heatmap): detections and scores from one forward pass.


def detect_array_with_scores(
    bundle: LoadedBundle, data: np.ndarray, valid: np.ndarray,
) -> tuple[list[PixelDetection], np.ndarray | None]:
    """:func:`detect_array` at the card's settings, and the best class score of each heatmap cell.

    Returns:
        The detections, and float32 scores ``(ceil(h / stride), ceil(w / stride))`` from the same forward
        pass (None when no pixel is valid, or for a box detector, which has no heatmap).
    """
    if not valid.any() or hasattr(bundle.model, "detect"):
        return detect_array(bundle, data, valid), None
    heat, sizes = heads(bundle, data, valid)
    card = bundle.card
    found = _decode(card, output_stride(bundle.model), heat, sizes, valid, card.threshold)
    return found, heat.max(dim=0).values.numpy().astype(np.float32, copy=False)

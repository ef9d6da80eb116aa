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

from fieldtruth.detectors.bundle import LoadedBundle
from fieldtruth.detectors.card import ModelCard
from fieldtruth.detectors.device import device_of
from fieldtruth.detectors.errors import InputMismatchError
from fieldtruth.detectors.model import output_stride
from fieldtruth.detectors.peaks import find_peaks, suppress_inside_boxes

log = logging.getLogger(__name__)


class PixelDetection(NamedTuple):
    """One detected site on a chip: continuous pixel position, score in [0, 1], class."""

    row: float
    col: float
    score: float
    label: str


def normalise(
    card: ModelCard, data: np.ndarray, valid: np.ndarray, device: torch.device | None = None,
) -> torch.Tensor:
    """Check the input against the card, fill invalid pixels with the band means, standardise.

    Args:
        card: the model card (band order, normalisation statistics).
        data: float ``(bands, h, w)`` raw values in ``card.bands`` order.
        valid: bool ``(h, w)``.
        device: where to normalise and leave the result (the CPU when None): on a GPU the raw chip is
            copied there once, and the arithmetic runs there.

    Returns:
        float32 tensor ``(1, bands, h, w)`` on ``device``.

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
    x = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32)).to(device)
    ok = torch.from_numpy(np.ascontiguousarray(valid, dtype=bool)).to(device)
    mean = torch.tensor(card.norm_mean, dtype=torch.float32, device=x.device)[:, None, None]
    std = torch.tensor(card.norm_std, dtype=torch.float32, device=x.device)[:, None, None]
    x = (torch.where(ok, x, mean) - mean) / std
    return x.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)[None]


def heads(
    bundle: LoadedBundle, data: np.ndarray, valid: np.ndarray,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Class probabilities ``(classes, ceil(h / stride), ceil(w / stride))`` and box sizes ``(2, ...)``
    in pixels (height, width; None when the model has no size head) for a chip of raw values."""
    heat, sizes = forward(bundle, normalise(bundle.card, data, valid))
    return heat[0], (None if sizes is None else sizes[0])


def forward(bundle: LoadedBundle, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Probabilities ``(n, classes, ...)`` and box sizes ``(n, 2, ...)`` (or None) of a batch of normalised
    chips, computed on the network's device in the bundle's precision and returned on the CPU."""
    heat, sizes = forward_on_device(bundle, x)
    return heat.cpu(), (None if sizes is None else sizes.cpu())


@torch.inference_mode()
def forward_on_device(bundle: LoadedBundle, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`forward`, its float32 results left on the network's device (for :func:`find_peaks` there)."""
    network = bundle.network
    device = device_of(network)
    x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
    reduced = bundle.runner is not None and bundle.precision == "bfloat16"
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=reduced):
        out = network(x)
    logits = out.heatmap if hasattr(out, "heatmap") else out
    size = getattr(out, "size", None)
    heat = torch.sigmoid(logits).float()
    return heat, (None if size is None else torch.exp(size.clamp(max=6.0)).float())


def heatmap(bundle: LoadedBundle, data: np.ndarray, valid: np.ndarray) -> torch.Tensor:
    """Class probabilities ``(classes, ceil(h / stride), ceil(w / stride))`` for a chip of raw values."""
    return heads(bundle, data, valid)[0]


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
    heat, sizes = forward_on_device(bundle, normalise(bundle.card, data, valid, device_of(bundle.network)))
    stride = output_stride(bundle.model)
    return [_decode(card, stride, heat, sizes, [valid], _threshold(card, threshold))[0] for card in cards]


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
    stride, card, device = output_stride(bundle.network), bundle.card, device_of(bundle.network)
    for members in by_shape.values():
        for first in range(0, len(members), batch):
            group = members[first : first + batch]
            x = torch.cat([normalise(card, *chips[i], device) for i in group])
            heat, sizes = forward_on_device(bundle, x)
            decoded = _decode(card, stride, heat, sizes, [chips[i][1] for i in group], card.threshold)
            for i, detections in zip(group, decoded, strict=True):
                found[i] = detections
    return found


def _threshold(card: ModelCard, threshold: float | None) -> float:
    return card.threshold if threshold is None else float(threshold)


def _decode(
    card: ModelCard, stride: int, heat: torch.Tensor, sizes: torch.Tensor | None, valid: Sequence[np.ndarray],
    threshold: float,
) -> list[list[PixelDetection]]:
    """Peaks of a batch of heatmaps ``(n, classes, h, w)`` above ``threshold`` (found on their device),
    suppressed as the card says, as pixel detections of each chip (``valid``: its ``(h, w)`` mask)."""
    found = find_peaks(heat, threshold, max(1, round(card.min_distance_px / stride)), sizes)
    out: list[list[PixelDetection]] = []
    for peaks, mask in zip(found, valid, strict=True):
        if sizes is not None:
            peaks = suppress_inside_boxes(peaks, stride, card.box_suppression)
        h, w = mask.shape
        chip = []
        for peak in peaks:
            row = min(max((peak.row + 0.5) * stride, 0.0), h - 1e-3)
            col = min(max((peak.col + 0.5) * stride, 0.0), w - 1e-3)
            if mask[int(row), int(col)]:
                chip.append(PixelDetection(row, col, peak.score, card.classes[peak.channel]))
        out.append(chip)
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
    heat, sizes = forward(bundle, normalise(bundle.card, data, valid))
    card = bundle.card
    found = _decode(card, output_stride(bundle.model), heat, sizes, [valid], card.threshold)[0]
    return found, heat[0].max(dim=0).values.numpy().astype(np.float32, copy=False)

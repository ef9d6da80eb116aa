"""Scoring point detections against labelled site polygons: precision, recall, F1, average precision.

Matching is one-to-one and greedy by score: predictions are taken from the highest score down, and
each claims the nearest still-unmatched label (of its class, unless ``match_class`` is False) whose
polygon, buffered by ``tolerance``, contains it. Claimed predictions are true positives, the others
false positives; labels never claimed are false negatives. Because the greedy order is the score
order, the matches at any higher threshold are a prefix of these, so one matching gives the whole
precision-recall curve, its average precision and the F1-best threshold.

Points and polygons must share one coordinate system, and ``tolerance`` is in its units: pixels for
pixel geometries (default one pixel), metres for a metric CRS (``tolerance_px * pixel size``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import shapely
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

log = logging.getLogger(__name__)


class ScoredPoint(NamedTuple):
    """A predicted point: position (x, y in the labels' coordinates), score, class."""

    x: float
    y: float
    score: float
    label: str


class LabelShape(NamedTuple):
    """A labelled site: its polygon (or any geometry) and class."""

    geometry: BaseGeometry
    label: str


@dataclass(frozen=True)
class Scores:
    """Outcome of matching predictions to labels.

    Attributes:
        tp: predictions matched to a label. fp: predictions matched to none. fn: labels never matched.
        precision: ``tp / (tp + fp)`` (1.0 when there is no prediction).
        recall: ``tp / (tp + fn)`` (1.0 when there is no label).
        f1: harmonic mean of precision and recall.
        average_precision: area under the interpolated precision-recall curve of the ranked predictions.
        ranked: ``(score, is_true_positive)`` of every prediction, highest score first.
        n_labels: number of labels.
        tolerance: the buffer used, in the geometries' units.
    """

    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    average_precision: float
    ranked: tuple[tuple[float, bool], ...]
    n_labels: int
    tolerance: float

    def at_threshold(self, threshold: float) -> Scores:
        """Scores of the predictions with ``score >= threshold`` (the same matching, truncated)."""
        kept = tuple(r for r in self.ranked if r[0] >= threshold)
        return _scores(kept, self.n_labels, self.tolerance)

    def best_threshold(self) -> tuple[float, Scores]:
        """The threshold with the highest F1, centred in the score gap that gives it, and the scores there.

        With ranked scores ``s_1 >= s_2 >= ...``, keeping the top ``k`` works for any threshold in
        ``(s_{k+1}, s_k]``; the midpoint of that interval leaves the most margin on either side.
        """
        if not self.ranked:
            return 0.5, self
        scores = [s for s, _ in self.ranked]
        cum_tp = np.cumsum([tp for _, tp in self.ranked])
        best_k, best_f1 = 0, -1.0
        for k in range(1, len(scores) + 1):
            if k < len(scores) and scores[k] == scores[k - 1]:
                continue
            p, r = cum_tp[k - 1] / k, (cum_tp[k - 1] / self.n_labels if self.n_labels else 1.0)
            f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
            if f1 > best_f1 + 1e-12:
                best_k, best_f1 = k, f1
        below = scores[best_k] if best_k < len(scores) else 0.0
        threshold = (scores[best_k - 1] + below) / 2
        return threshold, self.at_threshold(threshold)

    def summary(self) -> dict[str, float | int]:
        """JSON-ready figures (no ranked list)."""
        return {
            "tp": self.tp, "fp": self.fp, "fn": self.fn, "n_labels": self.n_labels,
            "precision": round(self.precision, 4), "recall": round(self.recall, 4), "f1": round(self.f1, 4),
            "average_precision": round(self.average_precision, 4), "tolerance": self.tolerance,
        }


def _scores(ranked: tuple[tuple[float, bool], ...], n_labels: int, tolerance: float) -> Scores:
    tp = sum(1 for _, hit in ranked if hit)
    fp = len(ranked) - tp
    fn = n_labels - tp
    precision = tp / len(ranked) if ranked else 1.0
    recall = tp / n_labels if n_labels else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return Scores(
        tp, fp, fn, precision, recall, f1, average_precision(ranked, n_labels), ranked, n_labels, tolerance
    )


def average_precision(ranked: Sequence[tuple[float, bool]], n_labels: int) -> float:
    """All-points interpolated average precision (PASCAL VOC 2010+) of a score-sorted hit list.

    Args:
        ranked: ``(score, is_true_positive)`` sorted by decreasing score.
        n_labels: number of labels (the recall denominator).
    """
    if n_labels == 0:
        return 1.0 if not ranked else 0.0
    if not ranked:
        return 0.0
    hits = np.array([hit for _, hit in ranked], dtype=float)
    cum_tp = np.cumsum(hits)
    precision = cum_tp / np.arange(1, len(hits) + 1)
    recall = cum_tp / n_labels
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(steps * envelope))


def match_points(
    points: Sequence[ScoredPoint],
    labels: Sequence[LabelShape],
    *,
    tolerance: float = 1.0,
    match_class: bool = True,
) -> Scores:
    """Match predicted points one-to-one to label geometries, greedily by decreasing score.

    Args:
        points: predictions (any order; ties in score keep the given order).
        labels: labelled sites in the same coordinates as the points.
        tolerance: buffer around each label geometry within which a point counts (geometry units).
        match_class: only match a point to labels of its own class.

    Returns:
        Precision, recall, F1, average precision and the ranked hit list.

    Raises:
        ValueError: negative tolerance.
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance!r}")
    order = sorted(range(len(points)), key=lambda i: -points[i].score)
    zones = [lab.geometry.buffer(tolerance) if tolerance > 0 else lab.geometry for lab in labels]
    tree = shapely.STRtree(zones) if zones else None
    centres = [lab.geometry.centroid for lab in labels]
    taken = np.zeros(len(labels), dtype=bool)
    ranked: list[tuple[float, bool]] = []
    for i in order:
        p = points[i]
        point = Point(p.x, p.y)
        hit = False
        if tree is not None:
            candidates = [
                int(j)
                for j in tree.query(point, predicate="intersects")
                if not taken[j] and (not match_class or labels[j].label == p.label)
            ]
            if candidates:
                j = min(candidates, key=lambda j: centres[j].distance(point))
                taken[j] = hit = True
        ranked.append((float(p.score), hit))
    return _scores(tuple(ranked), len(labels), float(tolerance))


def score_detections(
    detections: Sequence[tuple[float, float, float, str]],
    labels: Sequence[tuple[str, BaseGeometry]],
    *,
    tolerance_px: float = 1.0,
    match_class: bool = True,
) -> Scores:
    """Score pixel detections against labels on the same pixel grid.

    Args:
        detections: :class:`~fieldtruth.detectors.predict.PixelDetection` values (row, col, score, label).
        labels: :class:`~fieldtruth.detectors.labels.PixelLabel` values (label, pixel polygon).
        tolerance_px: buffer around each label polygon, in pixels.
        match_class: only match a detection to labels of its class.
    """
    points = [
        ScoredPoint(float(col), float(row), float(score), str(label)) for row, col, score, label in detections
    ]
    shapes = [LabelShape(geometry, label) for label, geometry in labels]
    return match_points(points, shapes, tolerance=tolerance_px, match_class=match_class)


def merge_scores(parts: Sequence[Scores]) -> Scores:
    """Pool the matchings of several scenes into one (ranked lists merged by score, label counts summed)."""
    ranked = tuple(sorted((r for part in parts for r in part.ranked), key=lambda r: -r[0]))
    tolerance = parts[0].tolerance if parts else 0.0
    return _scores(ranked, sum(p.n_labels for p in parts), tolerance)

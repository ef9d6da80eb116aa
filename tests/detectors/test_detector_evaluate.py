"""Matching points to label polygons, on hand-made geometry."""

from __future__ import annotations

import pytest
from shapely.geometry import box

from fieldtruth.detectors.evaluate import (
    LabelShape,
    ScoredPoint,
    average_precision,
    match_points,
    merge_scores,
)

KILN, CAMP = "brick_kiln", "fishing_camp"


def labels() -> list[LabelShape]:
    return [
        LabelShape(box(0, 0, 10, 6), KILN),
        LabelShape(box(50, 50, 60, 56), KILN),
        LabelShape(box(100, 0, 110, 10), CAMP),
    ]


def test_points_inside_and_within_tolerance_match() -> None:
    points = [
        ScoredPoint(5, 3, 0.9, KILN),  # inside the first box
        ScoredPoint(60.8, 53, 0.8, KILN),  # 0.8 outside the second box: within 1 px
        ScoredPoint(112.5, 5, 0.7, CAMP),  # 2.5 px outside the camp box: too far
    ]
    scores = match_points(points, labels(), tolerance=1.0)
    assert (scores.tp, scores.fp, scores.fn) == (2, 1, 1)
    assert scores.precision == pytest.approx(2 / 3)
    assert scores.recall == pytest.approx(2 / 3)
    assert scores.f1 == pytest.approx(2 / 3)
    assert match_points(points, labels(), tolerance=3.0).tp == 3


def test_one_to_one_greedy_by_score() -> None:
    points = [ScoredPoint(4, 3, 0.2, KILN), ScoredPoint(6, 3, 0.95, KILN)]
    scores = match_points(points, labels())
    assert scores.ranked == ((0.95, True), (0.2, False))
    assert (scores.tp, scores.fp, scores.fn) == (1, 1, 2)


def test_nearest_label_is_claimed_when_zones_overlap() -> None:
    shapes = [LabelShape(box(0, 0, 10, 10), KILN), LabelShape(box(8, 0, 18, 10), KILN)]
    points = [ScoredPoint(9.5, 5, 0.9, KILN), ScoredPoint(4, 5, 0.8, KILN)]
    # the first point is nearer the second box's centre (13) than the first's (5): it takes box 2,
    # leaving box 1 to the second point
    assert match_points(points, shapes).tp == 2


def test_class_must_agree_unless_told_otherwise() -> None:
    points = [ScoredPoint(5, 3, 0.9, CAMP)]
    assert match_points(points, labels()).tp == 0
    assert match_points(points, labels(), match_class=False).tp == 1


def test_average_precision_and_best_threshold_by_hand() -> None:
    ranked = [(0.9, True), (0.8, False), (0.7, True), (0.3, False)]
    # recall steps: 0.5 at precision 1, then 0.5 at precision 2/3 (envelope) -> 0.5 + 1/3
    assert average_precision(ranked, 2) == pytest.approx(0.5 + 1 / 3)
    points = [ScoredPoint(5, 3, 0.9, KILN), ScoredPoint(200, 200, 0.6, KILN), ScoredPoint(55, 53, 0.4, KILN)]
    scores = match_points(points, labels()[:2])
    threshold, best = scores.best_threshold()
    assert best.tp == 2 and best.fp == 1
    assert threshold == pytest.approx(0.2)  # midway between the last kept score (0.4) and nothing (0)
    at = scores.at_threshold(0.5)
    assert (at.tp, at.fp, at.fn) == (1, 1, 1)


def test_empty_inputs_and_merging() -> None:
    none = match_points([], labels())
    assert (none.precision, none.recall, none.f1) == (1.0, 0.0, 0.0)
    empty = match_points([ScoredPoint(1, 1, 0.5, KILN)], [])
    assert (empty.fp, empty.recall) == (1, 1.0)
    merged = merge_scores([match_points([ScoredPoint(5, 3, 0.9, KILN)], labels()), empty])
    assert (merged.tp, merged.fp, merged.fn, merged.n_labels) == (1, 1, 2, 3)
    assert [s for s, _ in merged.ranked] == [0.9, 0.5]
    with pytest.raises(ValueError, match="tolerance"):
        match_points([], [], tolerance=-1)

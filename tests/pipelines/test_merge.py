"""Duplicate detections across tile halos: the best-scoring one of any close group is kept, greedily."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fieldtruth.pipelines.merge import suppress_duplicates


def _points(rows: list[tuple[float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["x", "y", "score"]).assign(name=[f"d{i}" for i in range(len(rows))])


def _greedy(points: pd.DataFrame, min_distance: float) -> set[str]:
    """The rule written out plainly: best score first, each kept one drops the others within reach."""
    ordered = points.sort_values(["score", "x", "y"], ascending=[False, True, True])
    kept: list[tuple[float, float]] = []
    names = set()
    for row in ordered.itertuples():
        if all(np.hypot(row.x - x, row.y - y) > min_distance for x, y in kept):
            kept.append((row.x, row.y))
            names.add(row.name)
    return names


def test_a_detection_dropped_by_a_better_one_drops_no_other() -> None:
    # b is within reach of a (better) and of c (worse); a and c are apart: a and c stay
    points = _points([(0.0, 0.0, 0.9), (8.0, 0.0, 0.8), (16.0, 0.0, 0.7)])
    assert set(suppress_duplicates(points, 10.0).name) == {"d0", "d2"}


def test_detections_exactly_at_the_distance_are_duplicates() -> None:
    points = _points([(0.0, 0.0, 0.9), (10.0, 0.0, 0.8), (30.0, 0.0, 0.5)])
    assert set(suppress_duplicates(points, 10.0).name) == {"d0", "d2"}


@pytest.mark.parametrize("seed", range(5))
def test_suppression_keeps_what_the_plain_greedy_rule_keeps(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    rows = list(zip(rng.uniform(0, 300, n), rng.uniform(0, 300, n), rng.choice([0.3, 0.5, 0.7, 0.9], n),
                    strict=True))  # few scores: ties broken by position, as in the merge
    points = _points(rows)
    kept = suppress_duplicates(points, 12.0)
    assert set(kept.name) == _greedy(points, 12.0)
    assert 0 < len(kept) < n

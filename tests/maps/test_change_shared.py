"""The shared change view: k-suppression as in the shared risk view, and no differencing between dates."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from fieldtruth.maps.change_shared import COUNT_COLUMNS, shared_change_view
from fieldtruth.pipelines.changes import region_changes, write_shared_changes
from fieldtruth.tests.data.region import DATES, TruthSite, write_region

D1, D2, D3 = DATES


def _cells(rows: list[tuple[int, int, int, int, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["ix", "iy", *COUNT_COLUMNS])


def test_a_cell_is_shown_only_when_every_count_is_zero_or_at_least_k() -> None:
    cells = _cells([(0, 0, 0, 3, 0, 0), (1, 0, 1, 5, 0, 0), (2, 0, 0, 4, 0, 2), (3, 0, 0, 0, 0, 0),
                    (4, 0, 3, 3, 7, 12)])
    view = shared_change_view(cells, cell_m=5000.0, k=3, round_to=1)
    shown = {f["properties"]["cell_id"]: f["properties"] for f in view["features"]}
    assert set(shown) == {"0_0", "4_0"}
    assert shown["4_0"] == {"cell_id": "4_0", "new": 3, "persistent": 3, "not_seen_lately": 7, "unknown": 12}
    rounded = shared_change_view(cells, cell_m=5000.0, k=3)  # as the risk view: to 5, never below k
    assert {f["properties"]["unknown"] for f in rounded["features"]} == {0, 10}
    assert all(set(f["properties"]) == {"cell_id", *COUNT_COLUMNS} for f in view["features"])


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="k, round_to and cell_m"):
        shared_change_view(_cells([]), cell_m=5000.0, k=0)
    with pytest.raises(ValueError, match="columns"):
        shared_change_view(pd.DataFrame({"ix": [0], "iy": [0]}), cell_m=5000.0)


def _cluster(extra_new: int, gone: int) -> tuple[TruthSite, ...]:
    """Seven kilns on dates 1 and 2 in one cell, of which ``gone`` are not there on date 3, and
    ``extra_new`` more that appear on date 3 (all within 600 m: one 5 km cell)."""
    sites = [TruthSite(f"k{i}", "brick_kiln", (1, 1), (2000 + 100 * i, 2500),
                       (D1, D2) if i < gone else DATES) for i in range(7)]
    sites += [TruthSite(f"n{i}", "brick_kiln", (1, 1), (2000 + 100 * i, 2700), (D3,))
              for i in range(extra_new)]
    return tuple(sites)


def _views(root: Path, truth: tuple[TruthSite, ...], round_to_one: bool) -> list[str]:
    """The shared views an attacker holds: as of date 2 and as of date 3 (every count exact if asked)."""
    write_region(root, truth=truth)
    texts = []
    for dates in ((D1, D2), DATES):
        changes = region_changes([root / d for d in dates])
        assert len(changes.cells) == 1  # the whole cluster lies in one cell
        if round_to_one:
            view = shared_change_view(changes.cells, cell_m=changes.cell_m, k=3, round_to=1,
                                      since=changes.since, dates=changes.dates)
        else:
            view = write_shared_changes(changes, root / "view.geojson")
        texts.append(json.dumps(view, sort_keys=True))
    return texts


@pytest.mark.parametrize("round_to_one", [True, False])
@pytest.mark.parametrize(("a", "b"), [((1, 0), (2, 0)), ((0, 1), (0, 2)), ((1, 1), (2, 2))])
def test_differencing_two_dates_cannot_tell_suppressed_counts_apart(
        tmp_path: Path, a: tuple[int, int], b: tuple[int, int], round_to_one: bool) -> None:
    """Worlds that differ only in a suppressed count on date 3 (1 or 2 new sites; 1 or 2 of the same 7
    sites not seen lately) give the attacker byte-identical views on both dates, even with every count
    exact: no difference of the views of two dates, nor of any counts in them, can reveal it."""
    world_a = _views(tmp_path / "a", _cluster(*a), round_to_one)
    world_b = _views(tmp_path / "b", _cluster(*b), round_to_one)
    assert world_a == world_b
    as_of_d2 = json.loads(world_a[0])
    assert len(as_of_d2["features"]) == 1  # the cell is shown on date 2 ...
    assert json.loads(world_a[1])["features"] == []  # ... and left out whole on date 3


def test_a_naive_view_would_leak_what_this_one_hides(tmp_path: Path) -> None:
    """What the test above defends against: publishing the cell's totals on both dates (the shared risk
    view's ``detections`` are such totals) gives the suppressed count by subtraction."""
    totals = {}
    for name, extra in (("a", 1), ("b", 2)):
        write_region(tmp_path / name, truth=_cluster(extra, 0))
        cells = region_changes([tmp_path / name / d for d in DATES]).cells
        totals[name] = int(cells[list(COUNT_COLUMNS)].to_numpy().sum())
    assert totals["b"] - totals["a"] == 1

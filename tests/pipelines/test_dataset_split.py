"""Honest splits: regions whole in one set, by column or by grid block, and the real KilnEye inventory."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from fieldtruth.ingest.points import read_point_inventory
from fieldtruth.pipelines.datasplit import SplitPlan, assign_regions, block_xy, site_regions, window_set
from fieldtruth.pipelines.errors import DatasetError
from fieldtruth.tests.data.shared import needs_shared_data, shared_data_root

KILNEYE = shared_data_root() / "kilneye"


def test_random_assignment_is_seeded_whole_and_fills_every_set() -> None:
    regions = [f"r{i}" for i in range(10)]
    plan = SplitPlan(column="district", seed=3)
    first, again = assign_regions(plan, regions * 2, "inv"), assign_regions(plan, regions, "inv")
    assert first == again and set(first) == set(regions)
    counts = {s: sum(1 for v in first.values() if v == s) for s in ("train", "validation", "test")}
    assert counts == {"train": 6, "validation": 2, "test": 2}
    assert assign_regions(SplitPlan(column="district", seed=4), regions, "inv") != first


def test_blocks_are_squares_of_the_ground() -> None:
    points = shapely.points([85.0, 85.001, 85.5], [25.0, 25.0, 25.0])
    frame = gpd.GeoDataFrame(geometry=points, crs="EPSG:4326")
    regions = site_regions(SplitPlan(block_m=10_000), frame, "inv")
    assert regions[0] == regions[1] != regions[2]
    x, _ = block_xy(np.array([85.0, 85.5]), np.array([25.0, 25.0]))
    assert 45_000 < x[1] - x[0] < 50_000  # half a degree of longitude in EPSG:6933 metres


@pytest.mark.parametrize(("inside", "near", "expected"), [
    (["train", "train"], ["train", "train", None], "train"),
    (["train", None], ["train", None], "train"),
    (["train", "test"], ["train", "test"], None),
    (["test"], ["test", "train"], None),
    ([None], [None], None),
])
def test_a_window_belongs_to_one_set_with_nothing_of_another_near(inside: list, near: list,
                                                                  expected: str | None) -> None:
    assert window_set(inside, near) == expected


@pytest.mark.parametrize(("options", "message"), [
    ({"column": "state", "block_m": 1000.0}, "exactly one of"),
    ({}, "exactly one of"),
    ({"column": "state", "fractions": (0.5, 0.5, 0.5)}, "add up to 1"),
    ({"column": "state", "named": {"holdout": ["x"]}}, "sets are"),
    ({"block_m": -1.0}, "block size must be positive"),
])
def test_a_bad_plan_is_refused(options: dict, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        SplitPlan(**options)


def test_a_split_column_must_be_kept() -> None:
    frame = gpd.GeoDataFrame({"kiln_type": ["FCBK"]}, geometry=shapely.points([85.0], [25.0]),
                             crs="EPSG:4326")
    with pytest.raises(DatasetError, match=r"no such column; its kept columns are \['kiln_type'\]"):
        site_regions(SplitPlan(column="state"), frame, "inv")


@needs_shared_data("kilneye")
def test_the_kilneye_inventory_splits_by_state_and_by_block(tmp_path: Path) -> None:
    decl = tmp_path / "kilneye.yaml"
    decl.write_text(
        "name: kilneye\nsource: github.com/ouranonymoussubmission/BrickKilnsNeurIPS24\nlicence: CC BY 4.0\n"
        "purpose: train a kiln detector\nsector: brick_kilns\n"
        f"files: ['{KILNEYE}/kilns_*.csv']\ngeometry: {{x: lon, y: lat, crs: EPSG:4326}}\n"
        "keep: [kiln_type, state]\nobject_size_m: 120\nobject_class: brick_kiln\n")
    inventory = read_point_inventory(decl, allow_dirs=[KILNEYE])
    assert len(inventory.frame) == 21_941 and inventory.provenance()["licence"] == "CC BY 4.0"
    states = site_regions(SplitPlan(column="state"), inventory.frame, "kilneye")
    named = {"train": ["bihar"], "validation": ["haryana"], "test": ["west_bengal"]}
    plan = SplitPlan(column="state", named=named)
    assignment = assign_regions(plan, states, "kilneye")
    sets = np.array([assignment.get(s) for s in states], dtype=object)
    counts = {s: int((sets == s).sum()) for s in ("train", "validation", "test")}
    assert counts == {"train": 3946, "validation": 2091, "test": 2185}
    assert int((sets == None).sum()) == 21_941 - sum(counts.values())  # noqa: E711 - punjab, uttar pradesh
    blocks = site_regions(SplitPlan(block_m=50_000), inventory.frame, "kilneye")
    by_block = assign_regions(SplitPlan(block_m=50_000, seed=1), blocks, "kilneye")
    assert len({by_block[b] for b in blocks}) == 3 and len(by_block) == len(set(blocks))
    assert not any(str(c) in decl.read_text() for c in inventory.frame.geometry.x[:3])

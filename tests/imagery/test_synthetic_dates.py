"""A later date of a synthetic scene: kilns gone and new, a cloud, the same bytes from the same arguments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from fieldtruth.imagery._synthetic_draw import Box
from fieldtruth.imagery._synthetic_layout import KILN
from fieldtruth.imagery.synthetic import generate_scene
from fieldtruth.imagery.synthetic_dates import later_date


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory):
    return generate_scene(tmp_path_factory.mktemp("dates") / "d1", seed=7, size=640)


def _band(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def test_kilns_gone_and_new_are_in_the_labels_and_in_the_pixels(scene, tmp_path: Path) -> None:
    later = later_date(scene, tmp_path / "d2", remove=2, add=3, seed=1, days=30)
    before = {s.box for s in scene.sites}
    after = {s.box for s in later.sites}
    assert len(before - after) == 2 and len(after - before) == 3
    assert all(s.label == KILN for s in later.sites if s.box in (before - after) | (after - before))
    assert later.acquired > scene.acquired and later.counts[KILN] == scene.counts[KILN] + 1
    old, new = _band(scene.band_paths["red"]), _band(later.band_paths["red"])
    changed = np.argwhere(old != new)
    assert len(changed) > 0
    boxes = (before - after) | (after - before)
    near = [any(b.row0 - 10 <= r <= b.row1 + 10 and b.col0 - 10 <= c <= b.col1 + 10 for b in boxes)
            for r, c in changed]
    assert all(near)  # nothing else changed


def test_a_cloud_leaves_no_valid_pixel_and_the_same_arguments_the_same_bytes(scene, tmp_path: Path) -> None:
    cloud = Box(0, 0, 100, 200)
    one = later_date(scene, tmp_path / "a", remove=1, add=1, seed=4, cloud=cloud)
    two = later_date(scene, tmp_path / "b", remove=1, add=1, seed=4, cloud=cloud)
    for name in one.band_paths:
        assert one.band_paths[name].read_bytes() == two.band_paths[name].read_bytes()
        assert not _band(one.band_paths[name])[:100, :200].any()
    assert one.sites == two.sites


def test_changes_stay_within_the_area_asked(scene, tmp_path: Path) -> None:
    halves = (Box(0, 0, 320, 640), Box(320, 0, 640, 640))
    area = max(halves, key=lambda h: sum(s.label == KILN and h.row0 <= s.box.row0 and s.box.row1 <= h.row1
                                         for s in scene.sites))
    later = later_date(scene, tmp_path / "w", remove=1, add=2, seed=3, within=area)
    moved = {s.box for s in scene.sites} ^ {s.box for s in later.sites}
    assert len(moved) == 3 and all(area.row0 <= b.row0 and b.row1 <= area.row1 for b in moved)


@pytest.mark.parametrize("bad", [{"days": 0}, {"remove": -1}, {"remove": 99}, {"add": -2}])
def test_bad_counts_are_refused(scene, tmp_path: Path, bad: dict) -> None:
    with pytest.raises(ValueError, match="expected days"):
        later_date(scene, tmp_path / "x", **bad)

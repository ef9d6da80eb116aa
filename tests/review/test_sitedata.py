"""Site facts: the run's detections read once into typed values, a broken row named."""

from __future__ import annotations

from pathlib import Path

import pytest

from fieldtruth.review.errors import DetectionsFormatError
from fieldtruth.review.sitedata import SiteFacts, site_facts
from fieldtruth.tests.data.runfolder import BUNDLE_SHA, make_run_folder


def test_every_site_of_the_detections_with_its_point(tmp_path: Path) -> None:
    rf = make_run_folder(tmp_path / "run", n=5, seed=3)
    facts = site_facts(rf.path)
    assert list(facts) == [f"site-{i:04d}" for i in range(5)]
    first, point = facts["site-0000"], rf.detections.geometry.iloc[0]
    assert isinstance(first, SiteFacts) and first.bundle_sha256 == BUNDLE_SHA
    assert (first.lon, first.lat) == pytest.approx((point.x, point.y))
    assert first.score == pytest.approx(float(rf.detections.score.iloc[0]))


def test_a_row_without_a_label_is_named(tmp_path: Path) -> None:
    rf = make_run_folder(tmp_path / "run", n=3, seed=3)
    rf.detections.assign(label=[None, "brick_kiln", "brick_kiln"]).to_parquet(rf.path / "detections.parquet")
    with pytest.raises(DetectionsFormatError, match=r"\['label'\].*detections.parquet"):
        site_facts(rf.path)

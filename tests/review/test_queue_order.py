"""`review queue --order score|uncertain|spread`: which leads to review next."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from fieldtruth.pipelines.cli_review import review_group
from fieldtruth.review.queue import review_queue
from fieldtruth.review.sitedata import site_facts
from fieldtruth.runfiles import RunFiles
from fieldtruth.tests.data.runfolder import make_run_folder


@pytest.fixture()
def run(tmp_path: Path) -> Path:
    folder = make_run_folder(tmp_path / "run", n=30, seed=5).path
    RunFiles(folder).model_card.write_text(json.dumps({"threshold": 0.5}))
    return folder


def test_score_order_is_the_default(run: Path) -> None:
    scores = [i.score for i in review_queue(run)]
    assert scores == sorted(scores, reverse=True)
    assert [i.site_id for i in review_queue(run, order="score")] == [i.site_id for i in review_queue(run)]


def test_uncertain_puts_scores_nearest_the_threshold_first(run: Path) -> None:
    gaps = [abs(i.score - 0.5) for i in review_queue(run, order="uncertain")]
    assert gaps == sorted(gaps) and gaps[0] < gaps[-1]


def test_spread_takes_the_farthest_lead_each_time(run: Path) -> None:
    items = review_queue(run, order="spread")
    facts = site_facts(run)
    assert items[0].site_id == review_queue(run)[0].site_id  # starts from the best-scored lead
    assert sorted(i.site_id for i in items) == sorted(facts)
    xy = np.array([[facts[i.site_id].lon, facts[i.site_id].lat] for i in items])
    # the second lead is the farthest from the first (flat distances are enough at this scale)
    assert np.argmax(np.linalg.norm(xy - xy[0], axis=1)) == 1
    # spreading: the first five leads lie farther apart than the five best scored
    best = np.array([[facts[i.site_id].lon, facts[i.site_id].lat] for i in review_queue(run)[:5]])

    def least_gap(points: np.ndarray) -> float:
        d = np.linalg.norm(points[:, None] - points[None], axis=-1)
        return float(d[np.triu_indices(len(points), 1)].min())

    assert least_gap(xy[:5]) >= least_gap(best)


def test_uncertain_without_a_threshold_is_refused(run: Path) -> None:
    RunFiles(run).model_card.unlink()
    with pytest.raises(ValueError, match="needs the detector's threshold"):
        review_queue(run, order="uncertain")
    result = CliRunner().invoke(click.Group(commands=[review_group]),
                                ["review", "queue", str(run), "--order", "uncertain"], obj={})
    assert result.exit_code == 1 and "--order score or spread" in result.output


def test_unknown_order_is_refused(run: Path) -> None:
    with pytest.raises(ValueError, match="unknown queue order 'nearest'"):
        review_queue(run, order="nearest")
    result = CliRunner().invoke(click.Group(commands=[review_group]),
                                ["review", "queue", str(run), "--order", "nearest"], obj={})
    assert result.exit_code == 2 and "nearest" in result.output

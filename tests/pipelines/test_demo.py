"""`fieldtruth demo`: the whole path offline, with the quality the README promises."""

from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import pytest
from click.testing import CliRunner

from fieldtruth.pipelines.cli import cli
from fieldtruth.review.ledger import Ledger

pytestmark = pytest.mark.slow


def test_demo_writes_the_run_folder_and_finds_the_synthetic_sites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIELDTRUTH_PASSPHRASE", raising=False)
    out = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--out", str(out)], obj={})
    assert result.exit_code == 0, result.output
    run = out / "run"
    for name in ("detections.parquet", "coverage.parquet", "run.json", "review.sqlite", "risk.parquet",
                 "risk_shared.geojson", "maps/leads_restricted.html", "maps/leads_shared.html"):
        assert (run / name).is_file(), name
    scores = json.loads((run / "demo_scores.json").read_text())
    assert scores["precision"] >= 0.8 and scores["recall"] >= 0.8, scores
    printed = re.search(r"precision (\d\.\d+)\s+recall (\d\.\d+)", result.output)
    assert printed, result.output
    assert abs(float(printed.group(1)) - scores["precision"]) < 1e-3
    assert abs(float(printed.group(2)) - scores["recall"]) < 1e-3
    detections = gpd.read_parquet(run / "detections.parquet")
    with Ledger.open(run / "review.sqlite") as ledger:
        assert set(ledger.statuses().values()) == {"unverified"}
        assert set(ledger.statuses()) == set(detections.site_id)
    page = (run / "maps" / "leads_restricted.html").read_text(encoding="utf-8")
    assert "human verification is required before any action" in page
    assert "synthetic owner" not in (run / "risk_shared.geojson").read_text(), "undeclared columns must be dropped"

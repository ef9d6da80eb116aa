"""`fieldtruth demo`: the whole path offline, with the quality the README promises.

The demo's own settings train for 900 steps, which is most of its time (minutes on two busy cores). The
path is tested here on the demo's own regions with a third of the steps (:data:`SETTINGS`), which still
finds the synthetic sites; ``make demo`` runs the full settings. The command itself is tested for what it
adds to :func:`run_demo`: its options reach it, and it prints the report.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
from click.testing import CliRunner

from fieldtruth.detectors.train import TrainConfig
from fieldtruth.pipelines.cli import cli
from fieldtruth.pipelines.demo import run_demo
from fieldtruth.review.ledger import Ledger

#: The demo preset with a third of its steps (900), and no clock (a busy machine must not stop it early):
#: precision 0.97 and recall 0.89 on the demo's scanned region (64 sites), against 0.8 asserted.
SETTINGS = {"steps": 300}


@pytest.mark.slow
def test_demo_writes_the_run_folder_and_finds_the_synthetic_sites(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIELDTRUTH_PASSPHRASE", raising=False)
    said: list[str] = []
    report = run_demo(tmp_path / "demo", train_config=TrainConfig.from_mapping(SETTINGS, "demo"),
                      progress=said.append)
    assert [line[:5] for line in said if line.startswith("[")] == [f"[{k}/7]" for k in range(1, 8)]
    run = report.summary.run_dir
    assert run == tmp_path / "demo" / "run"
    for name in ("detections.parquet", "coverage.parquet", "run.json", "review.sqlite", "risk.parquet",
                 "risk_shared.geojson", "maps/leads_restricted.html", "maps/leads_shared.html"):
        assert (run / name).is_file(), name
    scores = json.loads((run / "demo_scores.json").read_text())
    assert scores["precision"] >= 0.8 and scores["recall"] >= 0.8, scores
    printed = re.search(r"precision (\d\.\d+)\s+recall (\d\.\d+)", report.text())
    assert printed, report.text()
    assert abs(float(printed.group(1)) - scores["precision"]) < 1e-3
    assert abs(float(printed.group(2)) - scores["recall"]) < 1e-3
    detections = gpd.read_parquet(run / "detections.parquet")
    with Ledger.open(run / "review.sqlite") as ledger:
        assert set(ledger.statuses().values()) == {"unverified"}
        assert set(ledger.statuses()) == set(detections.site_id)
    page = (run / "maps" / "leads_restricted.html").read_text(encoding="utf-8")
    assert "human verification is required before any action" in page
    shared = (run / "risk_shared.geojson").read_text()
    assert "synthetic owner" not in shared, "undeclared columns must be dropped"
    totals = report.changes.changes.totals()  # the second date: 3 kilns gone, 3 new, in the quarter rescanned
    # the full demo finds exactly 3 and 3; this shorter training may miss or add one
    assert abs(totals["new"] - 3) <= 1 and abs(totals["not seen lately"] - 3) <= 1, totals
    assert totals["unknown"] > totals["persistent"]  # three quarters of the region were not scanned again
    assert "not seen lately" in report.text() and (tmp_path / "demo" / "changes_shared.geojson").is_file()


class _Report:
    def text(self) -> str:
        return "On the held-out synthetic region ...\n  precision 0.969   recall 1.000   F1 0.984"


def test_demo_command_runs_the_demo_with_its_options_and_prints_its_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Path, dict[str, Any]]] = []

    def fake_run_demo(out: Path, **options: Any) -> _Report:
        calls.append((out, options))
        options["progress"]("[1/7] generating")
        return _Report()

    monkeypatch.setattr("fieldtruth.pipelines.demo.run_demo", fake_run_demo)
    out = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--out", str(out), "--seed", "3", "--workers", "1"], obj={})
    assert result.exit_code == 0, result.output
    assert len(calls) == 1, "the command must run fieldtruth.pipelines.demo.run_demo"
    assert calls[0][0] == out and calls[0][1]["seed"] == 3 and calls[0][1]["workers"] == 1
    assert "[1/7] generating" in result.output
    assert "precision 0.969   recall 1.000" in result.output

"""Decisions follow a site into a later run of its region (``scan --previous``); erasure reaches every run."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import geopandas as gpd
import pytest
from click.testing import CliRunner

from fieldtruth.maps.leads import build_leads_map
from fieldtruth.pipelines.changes import region_changes
from fieldtruth.pipelines.cli import cli
from fieldtruth.pipelines.forget import forget_in_region
from fieldtruth.pipelines.sitelinks import carry_forward
from fieldtruth.review.carried import REQUEUE_MARGIN
from fieldtruth.review.errors import ErasureError, LedgerTamperedError
from fieldtruth.review.ledger import Ledger
from fieldtruth.review.lineage import linked_runs, read_lineage
from fieldtruth.review.queue import review_queue
from fieldtruth.tests.data.region import DATES, write_run

D1, D2, _ = DATES
DATA = re.compile(r"<script>window\.FT_DATA = (.*?);</script>", re.DOTALL)


@pytest.fixture
def runs(tmp_path: Path) -> dict:
    """Run 1 with decisions (confirmed, rejected twice), run 2 scanned with --previous run 1."""
    one, two = tmp_path / "run1", tmp_path / "run2"
    first = write_run(one, D1, 0).set_index("truth")
    with Ledger.of_run(one) as ledger:
        ledger.decide(first.loc["always", "site_id"], "confirmed", "imagery", "rv07", note="chimney")
        ledger.decide(first.loc["always", "site_id"], "confirmed", "field", "rv08")
        ledger.decide(first.loc["twin-a", "site_id"], "rejected", "imagery", "rv07", note="a pond")
        ledger.decide(first.loc["always-2", "site_id"], "rejected", "imagery", "rv07")
    second = write_run(two, D2, 1)
    rises = second["truth"] == "always-2"  # the detector sees it markedly more clearly now
    second.loc[rises, "score"] = float(first.loc["always-2", "score"]) + REQUEUE_MARGIN + 0.01
    below = second["truth"] == "twin-a"  # a little higher, below the margin: stays rejected
    second.loc[below, "score"] = float(first.loc["twin-a", "score"]) + REQUEUE_MARGIN - 0.02
    second.drop(columns="truth").to_parquet(two / "detections.parquet")
    carried = carry_forward(two, [one], D2, 50.0)
    return {"one": one, "two": two, "first": first, "carried": carried,
            "second": gpd.read_parquet(two / "detections.parquet")}


def test_a_site_found_again_keeps_its_id_and_the_link_is_recorded_both_ways(runs) -> None:
    first, second = runs["first"], runs["second"]
    assert runs["carried"] == 9  # the sites of date 1 still there on date 2
    assert set(first["site_id"]) & set(second["site_id"]) == set(first.drop(index="gone-d2")["site_id"])
    assert read_lineage(runs["two"]).previous == (runs["one"].resolve(),)
    assert read_lineage(runs["one"]).later == (runs["two"].resolve(),)
    assert carry_forward(runs["two"], [runs["one"]], D2, 50.0) == 0  # again: nothing changes
    assert linked_runs(runs["one"]) == (runs["two"].resolve(),)


def test_decisions_follow_the_site_into_the_later_queue(runs) -> None:
    first = runs["first"]
    queue = {i.site_id: i for i in review_queue(runs["two"])}
    confirmed = queue[first.loc["always", "site_id"]]
    assert confirmed.status == "confirmed" and confirmed.decisions == 0
    assert "confirmed in run1 by rv07, rv08 (2 decision(s)" in confirmed.carried
    assert queue[first.loc["twin-a", "site_id"]].status == "rejected"
    assert queue[first.loc["always-2", "site_id"]].status == "unverified"  # score rose past the margin
    assert "queued again" in queue[first.loc["always-2", "site_id"]].carried
    open_leads = {i.site_id for i in review_queue(runs["two"], ("unverified",))}
    assert first.loc["twin-a", "site_id"] not in open_leads and first.loc["always-2", "site_id"] in open_leads


def test_ledgers_stay_apart_and_verify(runs) -> None:
    with Ledger.of_run(runs["two"]) as two, Ledger.of_run(runs["one"]) as one:
        assert list(two.entries()) == [] and two.verify().ok  # nothing copied into the later ledger
        assert one.verify().ok and len(list(one.entries())) == 4
    result = CliRunner().invoke(cli, ["review", "verify", str(runs["two"])])
    assert result.exit_code == 0, result.output
    queue = CliRunner().invoke(cli, ["review", "queue", str(runs["two"])])
    line = next(x for x in queue.output.splitlines() if x.startswith(runs["first"].loc["always", "site_id"]))
    assert "confirmed" in line and "earlier run: confirmed in run1 by rv07, rv08" in line


def test_a_new_decision_in_the_later_run_counts_over_the_carried_one(runs) -> None:
    site = runs["first"].loc["always", "site_id"]
    with Ledger.of_run(runs["two"]) as ledger:
        ledger.decide(site, "uncertain", "imagery", "rv09")
    item = {i.site_id: i for i in review_queue(runs["two"])}[site]
    assert item.status == "uncertain" and item.carried == ""


def test_the_map_of_the_later_run_shows_the_carried_decision(runs) -> None:
    page = build_leads_map(runs["two"], encrypt=False, chip_px=0, quicklook_px=0).read_text()
    payload = json.loads(DATA.search(page).group(1))["payload"]
    status = {r[3]: r[2] for r in payload["leads"]["rows"]}
    first = runs["first"]
    assert status[first.loc["always", "site_id"]] == "confirmed"
    assert status[first.loc["twin-a", "site_id"]] == "rejected"
    assert status[first.loc["always-2", "site_id"]] == "unverified"


def test_a_tampered_earlier_ledger_stops_the_later_queue(runs) -> None:
    import sqlite3

    with sqlite3.connect(runs["one"] / "review.sqlite") as db:
        db.execute("DROP TRIGGER IF EXISTS decisions_no_update")
        db.execute("UPDATE decisions SET decision = 'rejected' WHERE seq = 1")
    with pytest.raises(LedgerTamperedError):
        review_queue(runs["two"])


def test_forget_reaches_every_linked_run(runs) -> None:
    one, two, first = runs["one"], runs["two"], runs["first"]
    site = first.loc["always", "site_id"]
    points = [gpd.read_parquet(d / "detections.parquet").set_index("site_id").loc[site, "geometry"]
              for d in (one, two)]
    result = CliRunner().invoke(cli, ["forget", str(two), site, "--reason", "owner request", "--by", "dpo1"])
    assert result.exit_code == 0, result.output
    assert f"erased in {one.resolve()}" in result.output and f"erased in {two}" in result.output
    needles = [site.encode(), b"chimney"] + [struct.pack("<d", v) for p in points for v in (p.x, p.y)]
    for folder in (one, two):
        assert site not in set(gpd.read_parquet(folder / "detections.parquet")["site_id"])
        for path in folder.rglob("*"):
            if path.is_file() and path.name != "review.sqlite":
                assert not any(n in path.read_bytes() for n in needles), path
        with Ledger.of_run(folder) as ledger:
            assert ledger.verify().ok and site in ledger.erased_sites()
            assert b"chimney" not in (folder / "review.sqlite").read_bytes()


def test_forget_refuses_when_a_linked_run_is_missing(runs, tmp_path: Path) -> None:
    site = runs["first"].loc["always", "site_id"]
    runs["one"].rename(tmp_path / "moved")
    with pytest.raises(ErasureError, match="missing"):
        forget_in_region(runs["two"], site, "owner request")
    with Ledger.of_run(runs["two"]) as ledger:
        assert site in ledger.sites()  # nothing touched


def test_forget_refuses_when_a_linked_run_holds_a_file_it_cannot_search(runs) -> None:
    site = runs["first"].loc["always", "site_id"]
    (runs["one"] / "old.7z").write_bytes(b"7z\xbc\xaf\x27\x1c" + b"\0" * 64)
    before = {d: (d / "detections.parquet").read_bytes() for d in (runs["one"], runs["two"])}
    with pytest.raises(ErasureError, match=r"old\.7z"):
        forget_in_region(runs["two"], site, "owner request")
    assert {d: (d / "detections.parquet").read_bytes() for d in before} == before  # neither run touched


def test_a_region_folder_moved_whole_keeps_its_links(runs, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for old, name in ((runs["one"], "run1"), (runs["two"], "run2")):
        old.rename(moved / name)
    assert read_lineage(moved / "run2").previous == ((moved / "run1").resolve(),)
    assert "../run1" in (moved / "run2" / "lineage.json").read_text()
    confirmed = runs["first"].loc["always", "site_id"]
    assert {i.site_id: i.status for i in review_queue(moved / "run2")}[confirmed] == "confirmed"


def test_changes_leave_out_the_sites_reviewers_rejected(runs, tmp_path: Path) -> None:
    first = runs["first"]
    changes = region_changes([runs["one"], runs["two"]])
    review = changes.review
    assert review[first.loc["always", "site_id"]] == "confirmed"  # carried from run 1
    assert review[first.loc["twin-a", "site_id"]] == "rejected"
    assert review[first.loc["always-2", "site_id"]] == "unverified"  # queued again: its score rose
    counted = {s.site for s in changes.counted()}
    assert first.loc["twin-a", "site_id"] not in counted and len(counted) == len(changes.sites) - 1
    assert sum(changes.totals().values()) == len(counted) == int(changes.cells[
        ["new", "persistent", "not_seen_lately", "unknown"]].to_numpy().sum())
    result = CliRunner().invoke(cli, ["changes", str(runs["one"]), str(runs["two"]),
                                      "--out", str(tmp_path / "s.csv")])
    assert result.exit_code == 0 and "rejected by reviewers: 1" in result.output
    assert ",rejected," in (tmp_path / "s.csv").read_text()

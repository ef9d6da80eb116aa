"""When and where: visit times and positions through every import route, their erasure, one vote a person.

Each route (a KoboToolbox or ODK Central export, a spreadsheet CSV, the map's queue CSV) must leave in the
ledger the time the person looked (never the import time) and, where they recorded it, their position;
``fieldtruth forget`` must take the positions away with the rest of the evidence.
"""

from __future__ import annotations

import csv
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from fieldtruth.maps.exports import export_sites
from fieldtruth.pipelines.cli_review import export_group, forget_command, review_group
from fieldtruth.review.actionable import export_actionable
from fieldtruth.review.errors import FieldFileError, NotActionableError
from fieldtruth.review.fieldfile import import_field_file
from fieldtruth.review.ledger import Ledger
from fieldtruth.review.xlsform import run_tag
from fieldtruth.tests.data.formexports import Submission, central_csv, kobo_csv
from fieldtruth.tests.data.runfolder import make_run_folder

CLI = click.Group(commands=[review_group, export_group, forget_command])
U1, U2, U3 = ("7d1f0c2a-3b4e-4f5a-8b6c-9d0e1f2a3b01", "7d1f0c2a-3b4e-4f5a-8b6c-9d0e1f2a3b02",
              "7d1f0c2a-3b4e-4f5a-8b6c-9d0e1f2a3b03")
#: A team's own form made in KoboToolbox's builder: ``start``/``end`` metadata, no answer to the visit time.
OWN_FORM = Submission(U1, "site-0003", "confirmed", "field", "rv07", "", "2026-03-04T06:00:00",
                      (25.501234, 87.012345, 41.5, 4.8), started="2026-03-01T10:02:41.120+05:45",
                      ended="2026-03-01T10:31:05.872+05:45")


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    return make_run_folder(tmp_path / "run", seed=6).path


def _tag(run_dir: Path) -> str:
    with Ledger.of_run(run_dir) as ledger:
        return run_tag(ledger)


def _visits(run_dir: Path) -> list[tuple[str, str, str | None, dict | None]]:
    """Who decided on which site, when they looked and where they stood, as the ledger keeps it."""
    with Ledger.open(run_dir / "review.sqlite") as ledger:
        return [(e.site_id, e.reviewer, e.visited_at, (e.evidence or {}).get("position"))
                for e in ledger.entries() if e.decision != "erased"]


@pytest.mark.parametrize("export", [kobo_csv, central_csv])
def test_a_forms_start_time_stands_in_for_an_empty_visit_time(run_dir: Path, tmp_path: Path,
                                                               export: object) -> None:
    second = OWN_FORM._replace(uuid=U2, site="site-0005", reviewer="rv08", started="", position=None)
    path = tmp_path / "export.csv"
    path.write_text(export(_tag(run_dir), [OWN_FORM, second]), encoding="utf-8")  # type: ignore[operator]
    assert import_field_file(run_dir, path).imported == 2
    assert _visits(run_dir) == [
        ("site-0003", "rv07", "2026-03-01T04:17:41Z",
         {"lat": 25.501234, "lon": 87.012345, "accuracy_m": 4.8}),
        ("site-0005", "rv08", "2026-03-01T04:46:05Z", None),  # no start: when the form was last saved
    ]


def test_a_local_time_without_a_zone_is_refused_until_the_zone_is_given(run_dir: Path,
                                                                       tmp_path: Path) -> None:
    path = tmp_path / "sheet.csv"
    path.write_text("site_id;decision;method;reviewer;visited_at;latitude;longitude\n"
                    "site-0001;confirmed;field;rv01;2026-03-01 10:15;25.49;86.98\n"
                    "site-0002;rejected;field;rv01;01/03/2026 11:40;;\n"
                    "site-0004;rejected;field;rv01;2026-03-01;;\n", encoding="utf-8")
    result = CliRunner().invoke(CLI, ["review", "import", str(run_dir), str(path)], obj={})
    assert result.exit_code == 1 and _visits(run_dir) == []
    assert f"{path}:2: visited_at: expected a time with its zone" in result.output
    assert "--timezone Asia/Kathmandu" in result.output
    assert f"{path}:3: visited_at: expected a date (2026-03-01) or a date and time" in result.output
    path.write_text(path.read_text(encoding="utf-8").replace("01/03/2026 11:40", "2026-03-01T11:40"),
                    encoding="utf-8")
    result = CliRunner().invoke(CLI, ["review", "import", str(run_dir), str(path), "--timezone", "Mars/Base"],
                                obj={})
    assert result.exit_code == 2 and "expected a time zone" in result.output and _visits(run_dir) == []
    result = CliRunner().invoke(
        CLI, ["review", "import", str(run_dir), str(path), "--timezone", "Asia/Kathmandu"], obj={})
    assert result.exit_code == 0, result.output
    assert _visits(run_dir) == [
        ("site-0004", "rv01", "2026-03-01", None),  # a date stays a date
        ("site-0001", "rv01", "2026-03-01T04:30:00Z", {"lat": 25.49, "lon": 86.98, "accuracy_m": None}),
        ("site-0002", "rv01", "2026-03-01T05:55:00Z", None),
    ]


def test_the_queue_csv_carries_the_visit_time_and_position(run_dir: Path, tmp_path: Path) -> None:
    queue = export_sites(run_dir, "csv", tmp_path / "queue.csv")
    rows = list(csv.DictReader(queue.open(encoding="utf-8")))
    assert {"visit_latitude", "visit_longitude", "visit_accuracy_m"} <= set(rows[0])
    rows[0].update(decision="confirmed", method="field", reviewer="rv02", visited_at="2026-03-01T09:00:00Z",
                   visit_latitude="25.4901", visit_longitude="86.9802", visit_accuracy_m="6")
    rows[1].update(decision="rejected", method="imagery", reviewer="rv02", visited_at="2026-03-01")
    with queue.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert import_field_file(run_dir, queue).imported == 2
    assert sorted(_visits(run_dir)) == sorted([
        (rows[0]["site_id"], "rv02", "2026-03-01T09:00:00Z",
         {"lat": 25.4901, "lon": 86.9802, "accuracy_m": 6.0}),
        (rows[1]["site_id"], "rv02", "2026-03-01", None),  # the lead's own lat/lon are never the visit's
    ])


def test_forget_erases_the_visit_positions_with_the_rest_of_the_evidence(run_dir: Path,
                                                                        tmp_path: Path) -> None:
    other = OWN_FORM._replace(uuid=U2, site="site-0005", position=(25.444444, 86.955555, 40.0, 9.5))
    path = tmp_path / "kobo.csv"
    path.write_text(kobo_csv(_tag(run_dir), [OWN_FORM, other]), encoding="utf-8")
    assert import_field_file(run_dir, path).imported == 2
    assert b"25.501234" in (run_dir / "review.sqlite").read_bytes()  # kept, while nobody asked otherwise
    result = CliRunner().invoke(CLI, ["forget", str(run_dir), "site-0003", "--reason", "owner request",
                                      "--by", "dpo1"], obj={})
    assert result.exit_code == 0, result.output
    with Ledger.open(run_dir / "review.sqlite") as ledger:
        assert ledger.verify().ok
        erased = [e for e in ledger.entries("site-0003") if e.decision != "erased"]
    assert [e.evidence for e in erased] == [None]
    assert [e.visited_at for e in erased] == ["2026-03-01T04:17:41Z"]  # the chain's "when" stays, not "where"
    assert b"25.501234" not in (run_dir / "review.sqlite").read_bytes()
    assert b"87.012345" not in (run_dir / "review.sqlite").read_bytes()
    assert _visits(run_dir)[-1] == ("site-0005", "rv07", "2026-03-01T04:17:41Z",
                                    {"lat": 25.444444, "lon": 86.955555, "accuracy_m": 9.5})


def test_one_person_in_two_cases_through_a_kobo_file_is_one_vote(run_dir: Path, tmp_path: Path) -> None:
    morning = Submission(U1, "site-0003", "confirmed", "field", "RV07", "2026-03-01T10:15:00.000+05:45",
                         "2026-03-02T09:41:19")
    evening = morning._replace(uuid=U2, reviewer="rv07", visited_at="2026-03-01T17:40:00.000+05:45")
    path = tmp_path / "kobo.csv"
    path.write_text(kobo_csv(_tag(run_dir), [morning, evening._replace(visited_at=morning.visited_at)]),
                    encoding="utf-8")
    with pytest.raises(FieldFileError, match="duplicate: reviewer 'rv07' already decides on 'site-0003'"):
        import_field_file(run_dir, path)  # the same person, the same visit, twice
    path.write_text(kobo_csv(_tag(run_dir), [morning, evening]), encoding="utf-8")
    assert import_field_file(run_dir, path).imported == 2  # two visits by one person: both kept
    assert [v[:2] for v in _visits(run_dir)] == [("site-0003", "rv07"), ("site-0003", "rv07")]
    out = tmp_path / "actionable.geojson"
    with pytest.raises(NotActionableError, match="best site has 1 confirming reviewer"):
        export_actionable(run_dir, out)
    second = morning._replace(uuid=U3, reviewer="rv09")
    path.write_text(kobo_csv(_tag(run_dir), [morning, evening, second]), encoding="utf-8")
    report = import_field_file(run_dir, path)
    assert report.imported == 1 and report.skipped == {"already in the ledger": 2}
    assert export_actionable(run_dir, out) == ["site-0003"]  # a second person: two votes

"""Imports of decisions as people's tools write them: KoboToolbox and ODK Central exports of the form,
spreadsheet CSVs (separators, BOM, line ends, UTF-16) and the map's queue CSV filled in."""

from __future__ import annotations

import codecs
import csv
import hashlib
import zipfile
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from fieldtruth.maps.exports import export_sites
from fieldtruth.pipelines.cli_review import review_group
from fieldtruth.review.errors import FieldFileError
from fieldtruth.review.fieldfile import import_field_file
from fieldtruth.review.ledger import Ledger
from fieldtruth.review.xlsform import run_tag
from fieldtruth.tests.data.formexports import Submission, central_csv, kobo_csv
from fieldtruth.tests.data.runfolder import make_run_folder

CLI = click.Group(commands=[review_group])
U1, U2, U3 = ("0b3c6f2e-1a1d-4c1e-9a51-7f3f1c2b9d01", "5e0a7d4b-9b3f-4d0c-8f0b-2a6e1c9f4e02",
              "9c8d7e6f-5a4b-4c3d-8e2f-1a0b9c8d7e03")
JPEG = b"\xff\xd8\xff\xe0 a field photo \xff\xd9"


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    return make_run_folder(tmp_path / "run", seed=6).path


def _tag(run_dir: Path) -> str:
    with Ledger.of_run(run_dir) as ledger:
        return run_tag(ledger)


def _entries(run_dir: Path) -> list:
    with Ledger.open(run_dir / "review.sqlite") as ledger:
        return list(ledger.entries())


def _trail(run_dir: Path) -> list[tuple[str, str, str, str]]:
    return [(e.site_id, e.decision, e.method, e.reviewer) for e in _entries(run_dir)]


def _visits(run_dir: Path) -> list[tuple[str | None, dict | None]]:
    """When and where each decision was made, as the ledger keeps it."""
    return [(e.visited_at, (e.evidence or {}).get("position")) for e in _entries(run_dir)]


#: The visits of SUBS as the ledger keeps them: UTC, and the position only where one was recorded.
VISITS = [("2026-03-01T04:30:00Z", {"lat": 25.501234, "lon": 87.012345, "accuracy_m": 4.8}),
          ("2026-03-01T10:15:00Z", None)]


SUBS = [
    Submission(U1, "site-0003", "confirmed", "field", "rv07", "2026-03-01T10:15:00.000+05:45",
               "2026-03-02T09:41:19", (25.501234, 87.012345, 41.5, 4.8),
               note="chimney; smoke, workers' huts"),
    Submission(U2, "site-0005", "field_visit", "imagery", "ngo-b.rv3", "2026-03-01T16:00:00.000+05:45",
               "2026-03-02T09:45:02"),
]


def test_kobo_export_with_names_and_groups_imports(run_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "kobo.csv"
    path.write_bytes(kobo_csv(_tag(run_dir), SUBS).encode("utf-8"))
    report = import_field_file(run_dir, path)
    assert report.imported == 2 and report.skipped == {}
    assert _trail(run_dir) == [("site-0003", "confirmed", "field", "rv07"),
                               ("site-0005", "field_visit", "imagery", "ngo-b.rv3")]
    assert _visits(run_dir) == VISITS  # when they looked (not the import time), and where
    first = _entries(run_dir)[0].evidence
    assert first["note"] == "chimney; smoke, workers' huts" and first["photos"] == []
    assert "field.worker.login" not in str([e.evidence for e in _entries(run_dir)])  # _submitted_by: not kept


def test_kobo_export_with_labels_imports(run_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "kobo-labels.csv"
    path.write_bytes(kobo_csv(_tag(run_dir), SUBS, labels=True).encode("utf-8"))
    assert import_field_file(run_dir, path).imported == 2
    assert _trail(run_dir) == [("site-0003", "confirmed", "field", "rv07"),
                               ("site-0005", "field_visit", "imagery", "ngo-b.rv3")]
    assert _visits(run_dir) == VISITS


def test_odk_central_export_imports_with_photos(run_dir: Path, tmp_path: Path) -> None:
    subs = [SUBS[0]._replace(photo="1772345678901.jpg"), SUBS[1],
            Submission(U3, "site-0007", "rejected", "field", "rv07", "2026-03-01T11:00:00.000+05:45",
                       "2026-03-02T09:50:00", review_state="rejected")]
    path = tmp_path / "central" / "fieldtruth.csv"
    photo = tmp_path / "central" / "files" / f"uuid:{U1}" / "1772345678901.jpg"
    photo.parent.mkdir(parents=True)
    photo.write_bytes(JPEG)
    path.write_text(central_csv(_tag(run_dir), subs), encoding="utf-8")
    with pytest.raises(FieldFileError, match="--photos DIR") as caught:
        import_field_file(run_dir, path)  # a named photo is never silently dropped
    assert len(caught.value.problems) == 1 and _entries(run_dir) == []
    report = import_field_file(run_dir, path, photos=tmp_path / "central")
    assert report.imported == 2 and report.skipped == {"rejected on the server": 1}
    assert _trail(run_dir) == [("site-0003", "confirmed", "field", "rv07"),
                               ("site-0005", "field_visit", "imagery", "ngo-b.rv3")]
    assert _visits(run_dir) == VISITS
    assert _entries(run_dir)[0].evidence["photos"] == [hashlib.sha256(JPEG).hexdigest()]


def test_odk_central_zip_download_imports_as_it_is(run_dir: Path, tmp_path: Path) -> None:
    subs = [SUBS[0]._replace(photo="1772345678901.jpg"), SUBS[1]]
    download = tmp_path / "fieldtruth.zip"
    with zipfile.ZipFile(download, "w") as archive:
        archive.writestr("fieldtruth.csv", central_csv(_tag(run_dir), subs))
        archive.writestr("fieldtruth - audit.csv", "instance ID,event,node,start,end\n")
        archive.writestr(f"files/uuid:{U1}/1772345678901.jpg", JPEG)
        archive.writestr(f"files/uuid:{U2}/1772345678901.jpg", b"another phone's photo, same name")
    report = import_field_file(run_dir, download)  # its own attachments, no --photos needed
    assert report.imported == 2
    assert _entries(run_dir)[0].evidence["photos"] == [hashlib.sha256(JPEG).hexdigest()]
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("notes.csv", "a,b\n1,2\n")
    with pytest.raises(FieldFileError, match="expected one main table") as caught:
        import_field_file(run_dir, tmp_path / "other.zip")
    assert len(caught.value.problems) == 1


def test_photos_from_a_zip_of_attachments(run_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "kobo.csv"
    path.write_text(kobo_csv(_tag(run_dir), [SUBS[0]._replace(photo="IMG_0001.jpg")]), encoding="utf-8")
    media = tmp_path / "attachments.zip"
    with zipfile.ZipFile(media, "w") as archive:
        archive.writestr(f"ngo/attachments/a1b2/{U1}/IMG_0001.jpg", JPEG)
    assert import_field_file(run_dir, path, photos=media).imported == 1
    assert _entries(run_dir)[0].evidence["photos"] == [hashlib.sha256(JPEG).hexdigest()]


def test_visits_are_recorded_in_their_order_and_an_empty_visit_time_falls_back(run_dir: Path,
                                                                              tmp_path: Path) -> None:
    late = SUBS[1]._replace(uuid=U3, site="site-0003", reviewer="rv08", visited_at="")  # server's time used
    path = tmp_path / "central.csv"
    path.write_text(central_csv(_tag(run_dir), [late, SUBS[1], SUBS[0]]), encoding="utf-8")  # newest first
    assert import_field_file(run_dir, path).imported == 3
    assert [(e.site_id, e.reviewer, e.visited_at) for e in _entries(run_dir)] == [
        ("site-0003", "rv07", "2026-03-01T04:30:00Z"), ("site-0005", "ngo-b.rv3", "2026-03-01T10:15:00Z"),
        ("site-0003", "rv08", "2026-03-02T09:45:02Z")]


def test_reimporting_a_grown_export_adds_only_the_new_submissions(run_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "kobo.csv"
    path.write_text(kobo_csv(_tag(run_dir), SUBS[:1]), encoding="utf-8")
    assert import_field_file(run_dir, path).imported == 1
    path.write_text(kobo_csv(_tag(run_dir), [SUBS[0], SUBS[0], SUBS[1]]), encoding="utf-8")
    report = import_field_file(run_dir, path)
    assert report.imported == 1 and report.skipped == {"already in the ledger": 1, "repeated submission": 1}
    assert [e.site_id for e in _entries(run_dir)] == ["site-0003", "site-0005"]


def test_an_export_of_another_runs_form_is_refused(run_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "kobo.csv"
    path.write_text(kobo_csv("0123456789ab", SUBS), encoding="utf-8")
    with pytest.raises(FieldFileError, match="another run") as caught:
        import_field_file(run_dir, path)
    assert len(caught.value.problems) == 1 and _entries(run_dir) == []


def test_semicolon_csv_with_bom_and_windows_line_ends(run_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    text = ("site_id;decision;method;reviewer;note;visited_at;latitude;longitude;accuracy_m\r\n"
            "site-0001;confirmed;imagery;rv01;\"oval kiln; chimney, 2 stacks\";2026-02-27;;;\r\n"
            "site-0002;Rejected;Imagery;rv01;école fermée;2026-02-28T17:05:00+01:00;25.49;86.98;12\r\n")
    path.write_bytes(codecs.BOM_UTF8 + text.encode("utf-8"))
    assert import_field_file(run_dir, path).imported == 2
    assert _trail(run_dir) == [("site-0001", "confirmed", "imagery", "rv01"),
                               ("site-0002", "rejected", "imagery", "rv01")]
    assert [e.evidence["note"] for e in _entries(run_dir)] == ["oval kiln; chimney, 2 stacks", "école fermée"]
    assert _visits(run_dir) == [("2026-02-27", None),
                                ("2026-02-28T16:05:00Z", {"lat": 25.49, "lon": 86.98, "accuracy_m": 12.0})]


def test_tab_separated_utf16_as_excel_unicode_text(run_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "unicode.txt"
    text = "site_id\tdecision\tmethod\treviewer\tnote\r\nsite-0001\tconfirmed\tfield\trv01\tvu, «four»\r\n"
    path.write_bytes(text.encode("utf-16"))  # with its byte-order mark, as Excel writes it
    assert import_field_file(run_dir, path).imported == 1
    assert _entries(run_dir)[0].evidence["note"] == "vu, «four»"


def test_filled_in_queue_csv_imports_as_it_is(run_dir: Path, tmp_path: Path) -> None:
    queue = export_sites(run_dir, "csv", tmp_path / "queue.csv")
    rows = list(csv.DictReader(queue.open(encoding="utf-8")))
    assert {"decision", "method", "reviewer", "note", "visited_at"} <= set(rows[0])
    assert not any(r["decision"] or r["note"] for r in rows)  # left blank for the team
    formula = '=HYPERLINK("http://x.invalid")'
    rows[0].update(decision="confirmed", method="imagery", reviewer="rv02", note=formula)
    rows[4].update(decision="uncertain", method="field", reviewer="rv02")
    with queue.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = CliRunner().invoke(CLI, ["review", "import", str(run_dir), str(queue)], obj={})
    assert result.exit_code == 0, result.output
    assert "imported 2 decision(s); skipped 18 blank" in result.output
    assert _trail(run_dir) == [(rows[0]["site_id"], "confirmed", "imagery", "rv02"),
                               (rows[4]["site_id"], "uncertain", "field", "rv02")]
    assert _entries(run_dir)[0].evidence["note"] == formula  # kept as text: the ledger is no spreadsheet
    assert _visits(run_dir) == [(None, None), (None, None)]  # the lead's lat/lon are not where one stood


def test_queue_csv_neutralises_formulas(run_dir: Path, tmp_path: Path) -> None:
    import geopandas as gpd

    dets = gpd.read_parquet(run_dir / "detections.parquet")
    dets.loc[0, "detector"] = "=HYPERLINK(\"http://x.invalid\",\"click\")"
    dets.loc[1, "scene_id"] = "@SUM(1+1)"
    dets.to_parquet(run_dir / "detections.parquet")
    text = export_sites(run_dir, "csv", tmp_path / "queue.csv").read_text(encoding="utf-8")
    cells = [c for row in csv.reader(text.splitlines()) for c in row]
    assert "'=HYPERLINK(\"http://x.invalid\",\"click\")" in cells and "'@SUM(1+1)" in cells
    assert not any(c.startswith(("=", "@", "+")) for c in cells)


def test_missing_columns_are_named_once(run_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "old-queue.csv"
    rows = "".join(f"site-000{i},unverified,25.5,87.0\n" for i in range(5))
    path.write_text("site_id,status,lat,lon\n" + rows)
    with pytest.raises(FieldFileError) as caught:
        import_field_file(run_dir, path)
    assert len(caught.value.problems) == 1
    line, message = caught.value.problems[0]
    assert line == 1 and "missing column(s) decision, method, reviewer" in message
    path.write_text("site_id|decision|method|reviewer\nsite-0001|confirmed|field|rv01\n")
    with pytest.raises(FieldFileError, match="separate columns with") as caught:
        import_field_file(run_dir, path)
    assert len(caught.value.problems) == 1


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "the file is empty"),
        (b"\n\n", "the file is empty"),
        (b"site_id,decision,method,reviewer\r\n", "no decisions in the file"),
        ("site_id,decision,method,reviewer,note\nsite-0001,confirmed,field,rv01,café\n".encode("cp1252"),
         "not UTF-8"),
        ("site_id\tdecision\n".encode("utf-16-le"), "NUL bytes"),
        (b"PK\x03\x04 an xlsx workbook", "ZIP or Office file"),
    ],
)
def test_unreadable_or_empty_files_are_refused_clearly(run_dir: Path, tmp_path: Path, content: bytes,
                                                       expected: str) -> None:
    path = tmp_path / "field.csv"
    path.write_bytes(content)
    with pytest.raises(FieldFileError, match=expected) as caught:
        import_field_file(run_dir, path)
    assert len(caught.value.problems) == 1 and _entries(run_dir) == []
    assert "cannot read the file: expected every row" not in str(caught.value)  # said once, not wrapped


def test_bad_rows_are_reported_with_their_lines(run_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "field.csv"
    path.write_text(
        "site_id,decision,method,reviewer,note\n"
        "site-0001,confirmed,field,rv01,two, parts\n"  # line 2: an unquoted separator: one value too many
        "site-9999,confirmed,field,rv01,\n"  # line 3: not a lead of this run
        "site-0002,confirmed,field,rv01,<img src=x onerror=alert(1)>\n"  # line 4: fine, kept as text
        ",,,,\n"  # line 5: blank
        "site-0003,confirmed,field,rv01,,\n"  # line 6: an empty extra value is fine
    )
    with pytest.raises(FieldFileError) as caught:
        import_field_file(run_dir, path)
    assert [line for line, _ in caught.value.problems] == [2, 3]
    (_, extra), (_, unknown) = caught.value.problems
    assert "double quotes" in extra and "unknown site 'site-9999'" in unknown
    path.write_text(path.read_text().replace("two, parts", '"two, parts"').replace("site-9999", "site-0004"))
    report = import_field_file(run_dir, path)
    assert report.imported == 4 and report.skipped == {"blank": 1}
    assert _entries(run_dir)[2].evidence["note"] == "<img src=x onerror=alert(1)>"


def test_rows_about_erased_sites_are_skipped(run_dir: Path, tmp_path: Path) -> None:
    with Ledger.of_run(run_dir) as ledger:
        ledger.erase_site("site-0003", "owner request", "dpo1")
    path = tmp_path / "kobo.csv"
    path.write_text(kobo_csv(_tag(run_dir), SUBS), encoding="utf-8")
    report = import_field_file(run_dir, path)
    assert report.imported == 1 and report.skipped == {"erased site": 1}
    assert [e.site_id for e in _entries(run_dir) if e.decision != "erased"] == ["site-0005"]


def test_photos_can_be_left_out_on_purpose(run_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "central.csv"
    sub = SUBS[0]._replace(photo="a/../../etc/passwd")
    path.write_text(central_csv(_tag(run_dir), [sub]), encoding="utf-8")
    photos = tmp_path / "media"
    photos.mkdir()
    with pytest.raises(FieldFileError, match="'passwd' not found"):
        import_field_file(run_dir, path, photos=photos)  # only a bare file name is ever looked up
    assert import_field_file(run_dir, path, without_photos=True).imported == 1
    assert _entries(run_dir)[0].evidence["photos"] == []


def test_cli_says_what_to_do_about_photos_once(run_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "central.csv"
    path.write_text(central_csv(_tag(run_dir), [SUBS[0]._replace(photo="1.jpg")]), encoding="utf-8")
    result = CliRunner().invoke(CLI, ["review", "import", str(run_dir), str(path)], obj={})
    assert result.exit_code == 1 and result.output.count("--without-photos") == 2  # the line, and the summary
    assert f"{path}:1: 1 photo(s) are named by file name" in result.output
    result = CliRunner().invoke(CLI, ["review", "import", str(run_dir), str(path), "--without-photos"],
                                obj={})
    assert result.exit_code == 0 and "imported 1 decision(s)" in result.output

"""Importing field decisions: all rows valid or nothing applied, every bad row reported with its line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fieldtruth.review.errors import FieldFileError
from fieldtruth.review.fieldfile import import_field_file, scene_ref
from fieldtruth.review.ledger import Ledger
from fieldtruth.tests.data.runfolder import make_run_folder

SHA = "ef" * 32
HEADER = "site_id,decision,method,reviewer,note,scenes,photos,device\n"


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    return make_run_folder(tmp_path / "run", seed=2).path


def _entries(run_dir: Path) -> list:
    with Ledger.open(run_dir / "review.sqlite") as led:
        return list(led.entries())


def test_valid_csv_is_applied_in_full(run_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "field.csv"
    path.write_text(
        HEADER
        + f"site-0001,confirmed,field,ngo-b.rv3,\"chimney, smoke\",S2B_1:{SHA};S2B_2,{SHA},phone-7\n"
        + "site-0002,Field-Visit,imagery,ngo-b.rv3,,,,phone-7\n"
    )
    assert import_field_file(run_dir, path).imported == 2
    entries = _entries(run_dir)
    assert [(e.site_id, e.decision, e.method) for e in entries] == [
        ("site-0001", "confirmed", "field"),
        ("site-0002", "field_visit", "imagery"),
    ]
    assert entries[0].evidence == {
        "note": "chimney, smoke",
        "photos": [SHA],
        "scenes": [{"id": "S2B_1", "sha256": SHA}, {"id": "S2B_2", "sha256": None}],
    }
    assert "phone-7" not in json.dumps([e.evidence for e in entries])
    again = import_field_file(run_dir, path)  # importing twice records nothing the second time
    assert again.imported == 0 and again.skipped == {"already in the ledger": 2}
    assert len(_entries(run_dir)) == 2


def test_malformed_csv_applies_nothing_and_reports_every_bad_line(run_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "field.csv"
    path.write_text(
        HEADER
        + "site-0001,confirmed,field,rv01,ok,,,\n"  # line 2: fine
        + "site-9999,confirmed,field,rv01,,,,\n"  # line 3: unknown site
        + "site-0002,maybe,field,rv01,,,,\n"  # line 4: bad decision
        + "site-0003,confirmed,satellite,rv01,,,,\n"  # line 5: bad method
        + "site-0004,confirmed,field,Jane Doe,,,,\n"  # line 6: not pseudonymous
        + 'site-0005,confirmed,field,rv01,"two\nlines",,,\n'  # lines 7-8: fine (multi-line note)
        + "site-0001,rejected,field,rv01,,,,\n"  # line 9: duplicate of line 2 (same site and reviewer)
        + "site-0006,confirmed,field,rv01,,,not-a-hash,\n"  # line 10: bad photo hash
        + ",confirmed,field,rv01,,,,\n"  # line 11: empty site id
    )
    with pytest.raises(FieldFileError) as caught:
        import_field_file(run_dir, path)
    lines = [line for line, _ in caught.value.problems]
    assert lines == [3, 4, 5, 6, 9, 10, 11]
    messages = dict(caught.value.problems)
    assert "unknown site 'site-9999'" in messages[3]
    assert "decision" in messages[4] and "method" in messages[5] and "pseudonymous" in messages[6]
    assert "duplicate" in messages[9] and "line 2" in messages[9]
    assert "SHA-256" in messages[10] and "site_id" in messages[11]
    assert "NOTHING" in str(caught.value)
    assert _entries(run_dir) == []


def test_geojson_rows_are_reported_with_their_lines(run_dir: Path, tmp_path: Path) -> None:
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [87.0, 25.5]},
            "properties": {
                "site_id": "site-0001",
                "decision": "confirmed",
                "method": "field",
                "reviewer": "rv01",
            },
        },
        {
            "type": "Feature",
            "geometry": None,
            "properties": {"site_id": "site-0002", "decision": "nope", "method": "field", "reviewer": "rv01"},
        },
        {
            "type": "Feature",
            "geometry": None,
            "properties": {
                "site_id": "site-0003",
                "decision": "rejected",
                "method": "field",
                "reviewer": "rv01",
                "photos": [SHA],
            },
        },
    ]
    text = '{"type": "FeatureCollection", "name": "features of the day",\n"features": [\n'
    text += ",\n".join(json.dumps(f) for f in features) + "\n]}\n"
    path = tmp_path / "field.geojson"
    path.write_text(text)
    with pytest.raises(FieldFileError) as caught:
        import_field_file(run_dir, path)
    assert [line for line, _ in caught.value.problems] == [4]
    assert _entries(run_dir) == []
    features[1]["properties"]["decision"] = "uncertain"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, indent=2))
    assert import_field_file(run_dir, path).imported == 3
    assert _entries(run_dir)[2].evidence["photos"] == [SHA]


def test_unreadable_files(run_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "FeatureCollection",\n "features": [ {oops} ]}')
    with pytest.raises(FieldFileError, match="line 2: not valid JSON"):
        import_field_file(run_dir, bad)
    empty = tmp_path / "empty.csv"
    empty.write_text(HEADER)
    with pytest.raises(FieldFileError, match="no decisions"):
        import_field_file(run_dir, empty)


def test_scene_ref() -> None:
    assert scene_ref(f"S2B:{SHA}") == {"id": "S2B", "sha256": SHA}
    assert scene_ref("urn:scene:1") == {"id": "urn:scene:1", "sha256": None}

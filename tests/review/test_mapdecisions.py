"""Decisions files from a map: signed, checked whole, imported once, stale decisions never applied silently.

The files are written here the way the page writes them (``JSON.stringify(doc, null, 1)`` is what
``json.dumps(doc, indent=1)`` writes for these documents) and signed with :func:`sign`; the browser test
(tests/maps/test_decide_browser.py) imports a file the page itself exported.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from fieldtruth.pipelines.cli_review import review_group
from fieldtruth.review.actionable import export_actionable
from fieldtruth.review.errors import (
    DecisionsFileError,
    FieldFileError,
    NotActionableError,
    StaleDecisionsError,
)
from fieldtruth.review.ledger import Ledger
from fieldtruth.review.mapdecisions import (
    import_decisions_file,
    is_decisions_file,
    sign,
    verify_decisions_file,
)
from fieldtruth.review.mapkeys import MapKey, map_key, new_map_key, run_id
from fieldtruth.runfiles import RunFiles
from fieldtruth.tests.data.runfolder import make_run_folder

PHOTO = "ab" * 32


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    return make_run_folder(tmp_path / "run", seed=3).path


def _decision(site: str, **kw: object) -> dict:
    doc = {
        "id": secrets.token_hex(16),
        "site_id": site,
        "basis": 0,
        "decision": "confirmed",
        "method": "field",
        "reviewer": "rv07",
        "note": "chimney, smoke",
        "visited_at": "2026-03-01T09:30:00.000Z",
        "recorded_at": "2026-03-01T09:41:12.123Z",
        "position": None,
        "photos": [],
    }
    doc.update(kw)
    return doc


def _file(path: Path, key: MapKey, decisions: list[dict], run: str = "run", **kw: object) -> Path:
    doc = {
        "format": "fieldtruth-decisions",
        "version": 1,
        "statement": "decisions",
        "run": run,
        "run_id": key.run_id,
        "map_id": key.map_id,
        "map_made": key.made,
        "sealed": key.sealed,
        "exported_at": "2026-03-02T10:00:00.000Z",
        "decisions": decisions,
    }
    doc.update(kw)
    path.write_bytes(sign(json.dumps(doc, indent=1, ensure_ascii=False), key.key).encode("utf-8"))
    return path


def _entries(run_dir: Path) -> list:
    with Ledger.open(run_dir / "review.sqlite") as ledger:
        return list(ledger.entries())


def test_keyring_is_private_and_keeps_the_run_id(run_dir: Path) -> None:
    assert run_id(run_dir) is None
    first, second = new_map_key(run_dir, sealed=True), new_map_key(run_dir, sealed=False)
    assert first.run_id == second.run_id == run_id(run_dir) and first.map_id != second.map_id
    assert (os.stat(RunFiles(run_dir).map_keys).st_mode & 0o777) == 0o600
    assert map_key(run_dir, first.map_id) == first and map_key(run_dir, "0" * 32) is None


def test_a_signed_file_imports_once(run_dir: Path, tmp_path: Path) -> None:
    key = new_map_key(run_dir, sealed=True)
    position = {"lat": 25.4412, "lon": 86.9821, "accuracy_m": 12.5}
    path = _file(
        tmp_path / "d.json",
        key,
        [
            _decision("site-0001", position=position),
            _decision("site-0002", decision="rejected", method="imagery", note="", photos=[PHOTO]),
            _decision("site-0003", decision="field_visit", method="other", reviewer="ngo.b-2"),
        ],
    )
    assert is_decisions_file(path) and verify_decisions_file(run_dir, path).doc.map_id == key.map_id
    report = import_decisions_file(run_dir, path)
    assert (len(report.recorded), report.already, report.stale) == (3, 0, [])
    entries = _entries(run_dir)
    assert [(e.site_id, e.decision, e.method, e.reviewer) for e in entries] == [
        ("site-0001", "confirmed", "field", "rv07"),
        ("site-0002", "rejected", "imagery", "rv07"),
        ("site-0003", "field_visit", "other", "ngo.b-2"),
    ]
    assert entries[0].evidence["note"] == "chimney, smoke" and entries[1].evidence["photos"] == [PHOTO]
    assert [e.visited_at for e in entries] == ["2026-03-01T09:30:00Z"] * 3, "the visit, not the import"
    assert entries[0].evidence["position"] == position
    assert "position" not in entries[1].evidence and "position" not in entries[2].evidence
    again = import_decisions_file(run_dir, path)
    assert (len(again.recorded), again.already) == (0, 3) and len(_entries(run_dir)) == 3


@pytest.mark.parametrize("where", ['"decision": "confirmed"', '"basis": 0', '"run": "run"', '"mac": "'])
def test_one_changed_byte_is_refused(run_dir: Path, tmp_path: Path, where: str) -> None:
    key = new_map_key(run_dir, sealed=True)
    path = _file(tmp_path / "d.json", key, [_decision("site-0001")])
    data = bytearray(path.read_bytes())
    at = data.index(where.encode()) + len(where) - 2
    data[at] = ord("1") if data[at] != ord("1") else ord("2")
    path.write_bytes(bytes(data))
    with pytest.raises(DecisionsFileError, match="changed after it was exported|expected a decisions file"):
        import_decisions_file(run_dir, path)
    assert _entries(run_dir) == []


def test_whitespace_and_a_repeated_member_are_refused(run_dir: Path, tmp_path: Path) -> None:
    key = new_map_key(run_dir, sealed=False)
    path = _file(tmp_path / "d.json", key, [_decision("site-0001")])
    path.write_bytes(path.read_bytes().replace(b'"run": "run"', b'"run":  "run"'))
    with pytest.raises(DecisionsFileError, match="authentication code does not match"):
        import_decisions_file(run_dir, path)
    text = json.dumps(
        {
            "format": "fieldtruth-decisions",
            "version": 1,
            "run": "run",
            "run_id": key.run_id,
            "map_id": key.map_id,
            "map_made": key.made,
            "sealed": False,
            "exported_at": "2026-03-02T10:00:00Z",
            "decisions": [_decision("site-0001")],
        },
        indent=1,
    )
    signed = sign(text, key.key)
    forged = signed.replace('"decisions": [', '"decisions": [], "decisions": [', 1)
    (tmp_path / "f.json").write_text(forged)
    with pytest.raises(DecisionsFileError):
        import_decisions_file(run_dir, tmp_path / "f.json")
    assert _entries(run_dir) == []


def test_a_file_for_another_run_is_refused(run_dir: Path, tmp_path: Path) -> None:
    other = make_run_folder(tmp_path / "other", seed=3).path  # same site ids, another run
    foreign = new_map_key(other, sealed=True)
    new_map_key(run_dir, sealed=True)
    path = _file(tmp_path / "d.json", foreign, [_decision("site-0001")], run="other")
    with pytest.raises(
        DecisionsFileError, match="another run .'other'.*Import it into the run folder it came from"
    ):
        import_decisions_file(run_dir, path)
    fresh = make_run_folder(tmp_path / "fresh", seed=3).path  # no map drawn yet
    with pytest.raises(DecisionsFileError, match="none yet: no map of it was drawn"):
        import_decisions_file(fresh, path)
    assert _entries(run_dir) == [] and import_decisions_file(other, path).recorded


def test_a_file_signed_with_another_maps_key_is_refused(run_dir: Path, tmp_path: Path) -> None:
    key = new_map_key(run_dir, sealed=True)
    thief = MapKey(key.run_id, key.map_id, secrets.token_bytes(32), key.made, True)  # right names, wrong key
    path = _file(tmp_path / "d.json", thief, [_decision("site-0001")])
    with pytest.raises(DecisionsFileError, match="signed without this map's key"):
        import_decisions_file(run_dir, path)
    unknown = MapKey(key.run_id, secrets.token_hex(16), key.key, key.made, True)  # a map the run never drew
    with pytest.raises(DecisionsFileError, match="never drew"):
        import_decisions_file(run_dir, _file(tmp_path / "u.json", unknown, [_decision("site-0001")]))
    assert _entries(run_dir) == []


def test_bad_decisions_are_all_listed_and_nothing_applied(run_dir: Path, tmp_path: Path) -> None:
    key = new_map_key(run_dir, sealed=True)
    path = _file(
        tmp_path / "d.json",
        key,
        [
            _decision("site-0001"),
            _decision("site-9999"),
            _decision("site-0002", reviewer="Jane Doe"),
            _decision("site-0003", decision="probably"),
            _decision("site-0004", visited_at="2026-03-09T00:00:00Z"),
            _decision("site-0005", position={"lat": 95.0, "lon": 0.0, "accuracy_m": 3}),
            _decision("site-0001", decision="rejected"),
        ],
    )
    with pytest.raises(FieldFileError) as info:
        import_decisions_file(run_dir, path)
    text = str(info.value)
    for expected in (
        "unknown site 'site-9999'",
        "pseudonymous reviewer id",
        "one of confirmed",
        "after the export",
        "the visit latitude between -90 and 90",
        "already decides on 'site-0001'",
        "6 bad row",
    ):
        assert expected in text
    assert _entries(run_dir) == []


def test_stale_decisions_are_reported_never_silently_applied(run_dir: Path, tmp_path: Path) -> None:
    key = new_map_key(run_dir, sealed=True)
    with Ledger.of_run(run_dir) as ledger:  # after the map was drawn, someone decided on site-0002
        newer = ledger.decide("site-0002", "rejected", "imagery", "rv09")
    path = _file(tmp_path / "d.json", key, [_decision("site-0001"), _decision("site-0002")])
    with pytest.raises(
        StaleDecisionsError, match=r"site-0002: the map showed entry #0, the ledger now has #1"
    ):
        import_decisions_file(run_dir, path)
    assert len(_entries(run_dir)) == 1
    skipped = import_decisions_file(run_dir, path, stale="skip")
    assert [e.site_id for e in skipped.recorded] == ["site-0001"] and len(skipped.stale) == 1
    with Ledger.open(run_dir / "review.sqlite") as ledger:
        assert ledger.statuses()["site-0002"] == "rejected"
    applied = import_decisions_file(run_dir, path, stale="apply")
    assert [e.site_id for e in applied.recorded] == ["site-0002"] and applied.already == 1
    assert applied.recorded[0].seq > newer.seq
    with pytest.raises(ValueError, match="stale to be one of"):
        import_decisions_file(run_dir, path, stale="maybe")


def test_not_a_decisions_file(run_dir: Path, tmp_path: Path) -> None:
    for name, content in (
        ("a.json", b'{"format": "fieldtruth-decisions", "version": 2}'),
        ("b.json", b"\xff\xfe{"),
    ):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(
            DecisionsFileError, match="expected a decisions file exported from a fieldtruth map"
        ):
            import_decisions_file(run_dir, tmp_path / name)
    (tmp_path / "c.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    assert not is_decisions_file(tmp_path / "c.geojson")


def test_cli_imports_a_decisions_file_and_refuses_a_forged_one(run_dir: Path, tmp_path: Path) -> None:
    cli = click.Group(commands=[review_group])
    key = new_map_key(run_dir, sealed=True)
    path = _file(tmp_path / "d.json", key, [_decision("site-0001"), _decision("site-0002")])
    res = CliRunner().invoke(cli, ["review", "import", str(run_dir), str(path)], obj={})
    assert res.exit_code == 0 and "recorded 2 decision(s)" in res.output and "0 already" in res.output
    res = CliRunner().invoke(cli, ["review", "import", str(run_dir), str(path)], obj={})
    assert (
        res.exit_code == 0
        and "recorded 0 decision(s)" in res.output
        and "2 already in the ledger" in res.output
    )
    path.write_bytes(path.read_bytes().replace(b"chimney", b"chimnex"))
    res = CliRunner().invoke(cli, ["review", "import", str(run_dir), str(path)], obj={})
    assert (
        res.exit_code == 1
        and "changed after it was exported" in res.output
        and "Nothing was applied" in res.output
    )
    assert len(_entries(run_dir)) == 2


def test_already_in_the_ledger_means_the_same_visit_by_the_same_person(run_dir: Path, tmp_path: Path) -> None:
    first = _file(tmp_path / "a.json", new_map_key(run_dir, sealed=True), [_decision("site-0001")])
    assert len(import_decisions_file(run_dir, first).recorded) == 1
    later = new_map_key(run_dir, sealed=True)  # a map drawn after the import: it shows entry #1
    same = _decision("site-0001", basis=1, reviewer=" RV07")
    revisit = _decision("site-0002", basis=0, visited_at="2026-03-01T11:00:00+02:00")
    report = import_decisions_file(run_dir, _file(tmp_path / "b.json", later, [same, revisit]))
    assert (len(report.recorded), report.already) == (1, 1), "RV07 is rv07: the same decision, not a new one"
    again = _decision("site-0001", basis=1, visited_at="2026-03-02T08:00:00Z")  # rv07 went back a day later
    report = import_decisions_file(run_dir, _file(tmp_path / "c.json", later, [again]))
    assert (len(report.recorded), report.already) == (1, 0)
    assert [(e.site_id, e.reviewer, e.visited_at) for e in _entries(run_dir)] == [
        ("site-0001", "rv07", "2026-03-01T09:30:00Z"),
        ("site-0002", "rv07", "2026-03-01T09:00:00Z"),
        ("site-0001", "rv07", "2026-03-02T08:00:00Z"),
    ]


def test_reviewer_ids_differing_by_case_are_one_person(run_dir: Path, tmp_path: Path) -> None:
    """Two confirmations from map files by RV07 and rv07 never make a site actionable."""
    key = new_map_key(run_dir, sealed=True)
    both = [
        _decision("site-0001", reviewer="RV07"),
        _decision("site-0001", reviewer="rv07", method="imagery"),
    ]
    with pytest.raises(FieldFileError, match="duplicate: reviewer 'rv07' already decides on 'site-0001'"):
        import_decisions_file(run_dir, _file(tmp_path / "one.json", key, both))
    assert _entries(run_dir) == []
    import_decisions_file(run_dir, _file(tmp_path / "a.json", key, [both[0]]))
    later = new_map_key(run_dir, sealed=True)
    second = _decision("site-0001", reviewer="Rv07", basis=1, visited_at="2026-03-01T10:00:00Z")
    assert len(import_decisions_file(run_dir, _file(tmp_path / "b.json", later, [second])).recorded) == 1
    assert [e.reviewer for e in _entries(run_dir)] == ["rv07", "rv07"]
    with pytest.raises(NotActionableError, match="1 confirming reviewer"):
        export_actionable(run_dir, tmp_path / "act.geojson")
    other = _decision("site-0001", reviewer="rv09", basis=2, visited_at="2026-03-01T11:00:00Z")
    import_decisions_file(run_dir, _file(tmp_path / "c.json", new_map_key(run_dir, sealed=True), [other]))
    assert export_actionable(run_dir, tmp_path / "act.geojson") == ["site-0001"]

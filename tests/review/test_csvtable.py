"""Reading CSVs as tools write them (separators, hints, line ends) and mapping their columns."""

from __future__ import annotations

import pytest

from fieldtruth.review.csvtable import parse, sniff_delimiter
from fieldtruth.review.formcolumns import canonical_row, map_columns


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("site_id,decision,method,reviewer", ","),
        ("site_id;decision;method;reviewer", ";"),
        ("site_id\tdecision\tmethod\treviewer", "\t"),
        ('"Yes, and some";"Site id";"Decision"', ";"),  # a separator inside a quoted header
        ("site_id", ","),
    ],
)
def test_sniff_delimiter(header: str, expected: str) -> None:
    assert sniff_delimiter(header + "\r\nx\r\n") == expected


def test_excel_separator_hint_and_line_numbers() -> None:
    table = parse('sep=;\r\nsite_id;note\r\ns1;"two\r\nlines"\r\n\r\ns2;x;\r\n', "f.csv")
    assert table.delimiter == ";" and table.header == ["site_id", "note"]
    assert [(r.line, r.values["site_id"], r.extra) for r in table.rows] == [(3, "s1", 0), (6, "s2", 0)]
    assert table.rows[0].values["note"] == "two\r\nlines"


def test_old_mac_line_ends() -> None:
    table = parse("site_id,decision\rs1,confirmed\rs2,rejected\r", "f.csv")
    assert [r.values["decision"] for r in table.rows] == ["confirmed", "rejected"]


def test_columns_feeding_one_field_twice_are_refused() -> None:
    with pytest.raises(ValueError, match="'note' and 'visit/note' both give 'note'"):
        map_columns(["site_id", "decision", "method", "reviewer", "note", "visit/note"])
    columns = map_columns(["_uuid", "site_id", "decision", "method", "reviewer", "meta/instanceID"])
    assert columns.by_field["instance_id"] == "meta/instanceID"  # the form's own id wins over the server's


def test_canonical_row_reads_a_kobo_raw_geopoint_and_labels() -> None:
    columns = map_columns(["Site id", "Decision", "How did you decide?", "Your reviewer code",
                           "Your position (optional)", "_submission_time", "_validation_status"])
    row = canonical_row(columns, {"Site id": "S0a1b2c3d4e5f (brick kiln)", "Decision": "Field visit needed",
                                  "How did you decide?": "Imagery", "Your reviewer code": "rv07",
                                  "Your position (optional)": "25.5 87.0 40 5.5",
                                  "_submission_time": "2026-03-02T09:41:19"})
    assert row == {"site_id": "S0a1b2c3d4e5f", "decision": "field_visit", "method": "imagery",
                   "reviewer": "rv07", "latitude": "25.5", "longitude": "87.0", "accuracy_m": "5.5",
                   "visited_at": "2026-03-02T09:41:19Z"}
    turned_down = {"Site id": "S1", "Decision": "Confirmed", "_validation_status": "Not Approved"}
    assert canonical_row(columns, turned_down) == {"__skip__": "rejected on the server"}

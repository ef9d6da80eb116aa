"""The visit-time rule (which column gives when a site was visited) and how times without a zone are read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from fieldtruth.review.fieldtime import local_time, parse_zone, server_time, visit_time
from fieldtruth.review.formcolumns import canonical_row, map_columns

KATHMANDU = ZoneInfo("Asia/Kathmandu")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Asia/Kathmandu", KATHMANDU),
        (" Africa/Accra ", ZoneInfo("Africa/Accra")),
        ("UTC", UTC),
        ("z", UTC),
        ("+05:45", timezone(timedelta(hours=5, minutes=45))),
        ("-0300", timezone(-timedelta(hours=3))),
    ],
)
def test_zones_by_name_or_offset(text: str, expected: object) -> None:
    assert parse_zone(text) == expected


@pytest.mark.parametrize("text", ["Mars/Olympus_Mons", "Kathmandu", "+25:00", "+05:75", "5:45", "",
                                  "../../etc/passwd", "/usr/share/zoneinfo/UTC"])
def test_unknown_zones_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expected a time zone: an IANA name"):
        parse_zone(text)


def test_times_with_a_zone_and_dates_are_taken_as_written() -> None:
    assert local_time("2026-03-01T10:15:00.000+05:45", "visit/visited_at", None) == (
        "2026-03-01T10:15:00+05:45")
    assert local_time("2026-03-01T04:30:00Z", "visited_at", KATHMANDU) == "2026-03-01T04:30:00+00:00"
    assert local_time(" 2026-03-01 ", "visited_at", None) == "2026-03-01"  # a date stays a date


@pytest.mark.parametrize("text", ["2026-03-01 10:15", "2026-03-01T10:15:00", "2026-03-01T10:15:00.000"])
def test_a_local_time_is_never_taken_as_utc(text: str) -> None:
    with pytest.raises(ValueError, match="without one, and a local time is never taken as UTC") as caught:
        local_time(text, "When did you look?", None)
    assert "When did you look?" in str(caught.value) and "--timezone Asia/Kathmandu" in str(caught.value)
    assert local_time(text, "visited_at", KATHMANDU).startswith("2026-03-01T10:15:00+05:45")


def test_a_time_made_ambiguous_by_daylight_saving_is_read_as_the_earlier_one() -> None:
    moment = datetime.fromisoformat(local_time("2026-10-25 02:30", "visited_at", ZoneInfo("Europe/Berlin")))
    assert moment.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # still summer time, +02:00


@pytest.mark.parametrize("text", ["01/03/2026 10:15", "2026-03-01T25:00:00+05:45", "yesterday", "1.3.2026"])
def test_times_that_are_not_iso_8601_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"visited_at: expected a date \(2026-03-01\) or a date and time"):
        local_time(text, "visited_at", KATHMANDU)


def test_the_servers_receipt_time_is_utc_even_without_a_zone() -> None:
    assert server_time("2026-03-02T09:41:19", "_submission_time") == "2026-03-02T09:41:19Z"  # KoboToolbox
    assert server_time("2026-03-02T09:41:19.000Z", "SubmissionDate") == "2026-03-02T09:41:19Z"  # Central
    assert server_time("2026-03-02T15:26:19+05:45", "SubmissionDate") == "2026-03-02T09:41:19Z"
    with pytest.raises(ValueError, match="_submission_time: expected"):
        server_time("02/03/2026", "_submission_time")


ANSWER, START, END, RECEIVED = ("2026-03-01T10:15:00.000+05:45", "2026-03-01T10:02:41.120+05:45",
                                "2026-03-01T10:31:05.872+05:45", "2026-03-02T09:41:19")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"visited_at": ANSWER, "started_at": START, "ended_at": END, "submitted_at": RECEIVED},
         "2026-03-01T10:15:00+05:45"),  # what the person says comes first
        ({"visited_at": " ", "started_at": START, "ended_at": END, "submitted_at": RECEIVED},
         "2026-03-01T10:02:41.120000+05:45"),  # else when the form was opened
        ({"started_at": "", "ended_at": END, "submitted_at": RECEIVED}, "2026-03-01T10:31:05.872000+05:45"),
        ({"submitted_at": RECEIVED}, "2026-03-02T09:41:19Z"),  # else the latest it can have been
        ({}, None),
    ],
)
def test_the_visit_time_rule(given: dict[str, str], expected: str | None) -> None:
    row = {"site_id": "S1", **given}
    assert visit_time(row, {}, KATHMANDU) == expected
    assert row == {"site_id": "S1"}  # the sources are used up


def test_the_zone_given_is_not_applied_to_the_servers_clock() -> None:
    assert visit_time({"submitted_at": RECEIVED}, {}, KATHMANDU) == "2026-03-02T09:41:19Z"
    with pytest.raises(ValueError, match="^start: expected a time with its zone"):
        visit_time({"started_at": "2026-03-01T10:02:41", "submitted_at": RECEIVED}, {"started_at": "start"},
                   None)


def test_kobo_start_and_end_columns_feed_the_rule() -> None:
    columns = map_columns(["start", "end", "visit/site_id", "visit/decision", "visit/method",
                           "visit/reviewer", "visit/visited_at", "_submission_time"])
    assert (columns.by_field["started_at"], columns.by_field["ended_at"]) == ("start", "end")
    values = {"start": START, "end": END, "visit/site_id": "S1", "visit/decision": "confirmed",
              "visit/method": "field", "visit/reviewer": "rv07", "visit/visited_at": "",
              "_submission_time": RECEIVED}
    assert canonical_row(columns, values)["visited_at"] == "2026-03-01T10:02:41.120000+05:45"
    values["start"] = "2026-03-01T10:02:41"
    assert canonical_row(columns, values) == {"__error__": (
        "start: expected a time with its zone (e.g. 2026-03-01T10:15:00+05:45, or 2026-03-01T04:30:00Z for "
        "UTC); got '2026-03-01T10:02:41' without one, and a local time is never taken as UTC. Add the zone "
        "to the times, or give the zone they were written in: `fieldtruth review import RUN FILE --timezone "
        "Asia/Kathmandu` (an IANA name, or an offset such as +05:45).")}

"""When a field decision was made, as form servers and spreadsheets write it: the visit-time rule and zones.

The ledger keeps each decision's visit time in UTC (or a date alone) and refuses a time without a zone
(:func:`fieldtruth.review.rules.validate_visited_at`). A row of a field file may give that time in several
columns; the importer takes the FIRST of these that the row fills in (the visit-time rule):

1. ``visited_at``: the answer to the form's "When did you look?" question (its default is the moment
   the form was opened, and the person may change it), or a spreadsheet's ``visited_at`` column: what
   the person says;
2. ``start``: when the form was first opened on the phone (the ``start`` metadata that KoboToolbox adds
   to every form and ODK forms often carry), normally at the site;
3. ``end``: when the form was last saved on the phone (``end`` metadata), later than the visit if the
   answer was edited afterwards;
4. the server's receipt time (KoboToolbox ``_submission_time``, ODK Central ``SubmissionDate``): the
   latest the visit can have been, possibly days after it (phones send when they find a network).

Zones:

- KoboToolbox and ODK write answers and the ``start``/``end`` metadata with the phone's offset
  (``2026-03-01T10:15:00.000+05:45``): taken as written.
- The servers keep their clocks in UTC; KoboToolbox writes ``_submission_time`` without a zone, ODK
  Central ``SubmissionDate`` with ``Z``. The receipt time, and only it, is read as UTC when it has no zone.
- Any other time without a zone (a spreadsheet's ``2026-03-01 10:15``) is read in the zone given to
  ``review import --timezone`` (an IANA name such as ``Asia/Kathmandu``, or an offset such as ``+05:45``;
  a local time that a daylight-saving change makes ambiguous is read as the earlier one). Without that
  option it is refused with both fixes: a local time is never taken as UTC.
- A date alone (``2026-03-01``) is kept as a date: the ledger stores dates as they are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: The importer's fields that may give a visit time, in the order the visit-time rule takes them.
VISIT_TIME_SOURCES: tuple[str, ...] = ("visited_at", "started_at", "ended_at", "submitted_at")

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_OFFSET_RE = re.compile(r"([+-])(\d{2}):?(\d{2})")
_EXAMPLE = "e.g. 2026-03-01T10:15:00+05:45, or 2026-03-01T04:30:00Z for UTC"


def parse_zone(text: str) -> tzinfo:
    """Return the time zone a user names: ``UTC``/``Z``, an offset (``+05:45``, ``-0300``) or an IANA name.

    Raises:
        ValueError: If the text is none of those (saying what is expected).
    """
    name = text.strip()
    if name.upper() in ("UTC", "Z"):
        return UTC
    offset = _OFFSET_RE.fullmatch(name)
    if offset:
        sign, hours, minutes = offset.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes))
        if delta < timedelta(hours=24) and int(minutes) < 60:
            return timezone(-delta if sign == "-" else delta)
    elif name and not name.startswith(("/", ".")):
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise ValueError(
        f"expected a time zone: an IANA name such as 'Asia/Kathmandu' or 'Africa/Accra', an offset such "
        f"as '+05:45', or 'UTC'; got {text!r}."
    )


def _parse(value: str, column: str) -> datetime | None:
    """Parse ISO 8601 text; None for a date alone. Raises ValueError naming the column."""
    text = value.strip()
    if _DATE_RE.fullmatch(text):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(
            f"{column}: expected a date (2026-03-01) or a date and time in ISO 8601 with its zone "
            f"({_EXAMPLE}); got {value!r}. Write it in that form."
        ) from exc


def local_time(value: str, column: str, zone: tzinfo | None) -> str:
    """Return a visit time as the ledger takes it: a date as it is, a time with its zone.

    Args:
        value: The text of the cell.
        column: The column it came from, named in errors.
        zone: The zone of times written without one (``review import --timezone``), or None.

    Raises:
        ValueError: If the text is not ISO 8601, or a time has no zone and ``zone`` is None.
    """
    moment = _parse(value, column)
    if moment is None:
        return value.strip()
    if moment.tzinfo is None:
        if zone is None:
            raise ValueError(
                f"{column}: expected a time with its zone ({_EXAMPLE}); got {value!r} without one, and a "
                "local time is never taken as UTC. Add the zone to the times, or give the zone they were "
                "written in: `fieldtruth review import RUN FILE --timezone Asia/Kathmandu` (an IANA name, "
                "or an offset such as +05:45)."
            )
        moment = moment.replace(tzinfo=zone)
    return moment.isoformat()


def server_time(value: str, column: str) -> str:
    """Return a server's receipt time as UTC text (``...Z``); without a zone it is UTC (the servers' clock).

    Raises:
        ValueError: If the text is not an ISO 8601 date and time.
    """
    moment = _parse(value, column)
    if moment is None:
        return value.strip()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def visit_time(row: dict[str, Any], headers: Mapping[str, str], zone: tzinfo | None) -> str | None:
    """Apply the visit-time rule to a row: remove its time sources, and return the visit time chosen.

    Args:
        row: The row under the importer's field names (``started_at``, ``ended_at`` and
            ``submitted_at`` are removed from it).
        headers: Field -> the file's column name, for errors.
        zone: The zone of local times without one (see the module docstring), or None.

    Returns:
        The first time the row gives, in the order of :data:`VISIT_TIME_SOURCES`, or None.

    Raises:
        ValueError: If the chosen time is not ISO 8601, or is local without a zone and ``zone`` is None.
    """
    given = {field: row.pop(field, None) for field in VISIT_TIME_SOURCES}
    for field in VISIT_TIME_SOURCES:
        value = given[field]
        if value is None or str(value).strip() == "":
            continue
        column = headers.get(field, field)
        if field == "submitted_at":
            return server_time(str(value), column)
        return local_time(str(value), column, zone)
    return None

"""The ledger's rules for what a person gives: reviewer ids, decisions, evidence, visit times and positions.

Reviewer ids are compared in ONE canonical form everywhere (one person, one vote): surrounding whitespace
removed, Unicode compatibility forms folded (NFKC: fullwidth ``ｒｖ０７`` is ``rv07``), case folded, then
NFKC again; the result must be 2-32 ASCII letters, digits, ``.``, ``_`` or ``-``. Anything that is
still not ASCII after folding (a Cyrillic ``р`` that looks like a Latin ``p``, a zero-width space) is
refused rather than guessed at. New entries store the canonical form; entries of older ledgers are
compared through :func:`reviewer_key`. The restricted map's page applies the same rule before it keeps
a decision (``maps/vendor/fieldtruth-decide.js``, given :data:`REVIEWER_PATTERN`; a browser test
compares the two on every Unicode character).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any, NamedTuple

from fieldtruth.review.errors import InvalidDecisionError
from fieldtruth.review.records import DECISIONS, MAX_NOTE_CHARS, METHODS, Evidence, SceneRef, VisitPosition

REVIEWER_PATTERN = r"[a-z0-9][a-z0-9._-]{1,31}"
"""What a reviewer id must be once in canonical form (:func:`reviewer_key`), matched whole."""
_REVIEWER_RE = re.compile(REVIEWER_PATTERN)
_SHA256_RE = re.compile(r"[0-9a-f]{64}")

CLOCK_SKEW = timedelta(minutes=10)
"""How far in the future a visit time may lie (a phone's clock may run ahead)."""


def reviewer_key(reviewer: str) -> str:
    """Return the canonical form of a reviewer id (no validation): the form every comparison uses."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", reviewer.strip()).casefold())
    return folded.strip()


def validate_reviewer(reviewer: object) -> str:
    """Check a pseudonymous reviewer id and return its canonical form (see the module docstring).

    Names, e-mail addresses and anything with spaces are refused: the ledger must not identify people.

    Raises:
        InvalidDecisionError: If the id is not 2-32 letters, digits, ``.``, ``_``, ``-`` once folded.
    """
    key = reviewer_key(reviewer) if isinstance(reviewer, str) else None
    if key is None or not _REVIEWER_RE.fullmatch(key):
        raise InvalidDecisionError(
            "expected a pseudonymous reviewer id (2-32 characters: letters, digits, '.', '_', '-'; "
            f"no spaces, no e-mail address, no look-alike letters of other scripts); got {reviewer!r}. "
            "Use a short code such as 'rv07' (case does not matter: RV07 is rv07)."
        )
    return key


def validate_choice(value: object, allowed: Sequence[str], what: str) -> str:
    """Return ``value`` if it is one of ``allowed``; raise :class:`InvalidDecisionError` otherwise."""
    if not isinstance(value, str) or value not in allowed:
        raise InvalidDecisionError(
            f"expected {what} to be one of {', '.join(allowed)}; got {value!r}. Use one of those words."
        )
    return value


def validate_visited_at(value: object, *, now: datetime | None = None) -> str | None:
    """Return a visit time as UTC ISO 8601 (``2026-03-01T10:15:00Z``, or a date ``2026-03-01``), or None.

    Accepts a :class:`datetime` with a time zone, a :class:`date`, or ISO 8601 text with an offset
    (``2026-03-01T15:45+05:30``, ``...Z``) or a plain date. Precision is kept to the second.

    Raises:
        InvalidDecisionError: If the text is not ISO 8601, has no time zone, or lies in the future.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    parsed: date | datetime
    if isinstance(value, (date, datetime)):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            parsed = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            parsed = None  # type: ignore[assignment]
    else:
        parsed = None  # type: ignore[assignment]
    fix = "Give it as ISO 8601 with a time zone, e.g. 2026-03-01T10:15:00+05:30 or 2026-03-01T04:45:00Z."
    if parsed is None:
        raise InvalidDecisionError(f"expected a visit time (ISO 8601); got {value!r}. {fix}")
    now = now or datetime.now(timezone.utc)
    if not isinstance(parsed, datetime):
        if parsed > (now + CLOCK_SKEW).date():
            raise InvalidDecisionError(f"expected a visit date that is not in the future; got {value!r}.")
        return parsed.isoformat()
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise InvalidDecisionError(f"expected a visit time with a time zone; got {value!r}. {fix}")
    utc = parsed.astimezone(timezone.utc).replace(microsecond=0)
    if utc > now + CLOCK_SKEW:
        raise InvalidDecisionError(
            f"expected a visit time that is not in the future; got {value!r} ({utc.isoformat()} UTC). "
            "Check the device's clock and time zone."
        )
    return utc.isoformat().replace("+00:00", "Z")


def _number(value: object, what: str, low: float, high: float) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or not low <= number <= high:
        raise InvalidDecisionError(f"expected {what} between {low:g} and {high:g}; got {value!r}.")
    return number


def validate_position(position: object) -> VisitPosition | None:
    """Check a visit position (a :class:`VisitPosition` or a mapping with ``lat``, ``lon``, ``accuracy_m``).

    Raises:
        InvalidDecisionError: If a key is unknown, a coordinate is out of range, or the accuracy negative.
    """
    if position is None:
        return None
    if isinstance(position, VisitPosition):
        raw: Mapping[str, Any] = position.to_json()
    elif isinstance(position, Mapping) and {"lat", "lon"} <= set(position) <= {"lat", "lon", "accuracy_m"}:
        raw = position
    else:
        raise InvalidDecisionError(
            f"expected a visit position {{'lat': ..., 'lon': ..., 'accuracy_m': ...}}; got {position!r}."
        )
    accuracy = raw.get("accuracy_m")
    return VisitPosition(
        lat=_number(raw["lat"], "the visit latitude", -90.0, 90.0),
        lon=_number(raw["lon"], "the visit longitude", -180.0, 180.0),
        accuracy_m=None if accuracy in (None, "") else _number(accuracy, "the accuracy in metres", 0.0, 1e7),
    )


def validate_sha256(value: object, what: str) -> str:
    """Return ``value`` if it is a lowercase SHA-256 hex digest; raise :class:`InvalidDecisionError`."""
    if not isinstance(value, str) or not _SHA256_RE.fullmatch(value):
        raise InvalidDecisionError(
            f"expected {what} to be a SHA-256 hex digest (64 lowercase hex characters); got {value!r}. "
            "Compute it with `sha256sum FILE`."
        )
    return value


def _scene_ref(item: object) -> SceneRef:
    if isinstance(item, SceneRef):
        ref = item
    elif isinstance(item, str):
        ref = SceneRef(id=item)
    elif isinstance(item, Mapping) and set(item) <= {"id", "sha256"}:
        ref = SceneRef(id=item.get("id"), sha256=item.get("sha256"))  # type: ignore[arg-type]
    else:
        raise InvalidDecisionError(
            f"expected a scene reference (a scene id, or {{'id': ..., 'sha256': ...}}); got {item!r}."
        )
    if not isinstance(ref.id, str) or not ref.id.strip():
        raise InvalidDecisionError(f"expected a non-empty scene id; got {ref.id!r}.")
    if ref.sha256 is not None:
        validate_sha256(ref.sha256, f"the sha256 of scene {ref.id!r}")
    return ref


def _from_mapping(evidence: object) -> Evidence:
    keys = {"scenes", "photos", "note", "position"}
    if not isinstance(evidence, Mapping) or not set(evidence) <= keys:
        raise InvalidDecisionError(
            f"expected evidence with keys among {sorted(keys)}; got {evidence!r}. Remove the other keys."
        )
    scenes = evidence.get("scenes") or ()
    photos = evidence.get("photos") or ()
    if isinstance(scenes, (str, bytes)) or isinstance(photos, (str, bytes)):
        raise InvalidDecisionError(
            f"expected lists for evidence 'scenes' and 'photos'; got {scenes!r} and {photos!r}."
        )
    return Evidence(tuple(scenes), tuple(photos), evidence.get("note") or "", evidence.get("position"))


def make_evidence(evidence: Evidence | Mapping[str, Any] | None, note: str = "") -> Evidence:
    """Validate and normalise evidence given as an :class:`Evidence` or a plain mapping.

    Args:
        evidence: ``None``, an :class:`Evidence`, or a mapping with optional keys ``scenes`` (ids or
            ``{"id", "sha256"}`` mappings), ``photos`` (SHA-256 hex digests), ``note`` and ``position``
            (``{"lat", "lon", "accuracy_m"}``).
        note: A note given separately; it must not conflict with ``evidence["note"]``.

    Raises:
        InvalidDecisionError: If a key is unknown, a hash or position is malformed, or the note too long.
    """
    given = (
        Evidence()
        if evidence is None
        else evidence
        if isinstance(evidence, Evidence)
        else _from_mapping(evidence)
    )
    if note and given.note and note != given.note:
        raise InvalidDecisionError(
            f"got two different notes, {note!r} and {given.note!r}; give the note once."
        )
    text = note or given.note
    if not isinstance(text, str) or len(text) > MAX_NOTE_CHARS:
        raise InvalidDecisionError(
            f"expected a note of at most {MAX_NOTE_CHARS} characters; got {str(text)[:40]!r}... "
            "Keep notes short and keep photos and documents outside the ledger (give their hashes)."
        )
    return Evidence(
        scenes=tuple(_scene_ref(s) for s in given.scenes),
        photos=tuple(validate_sha256(p, "a photo hash") for p in given.photos),
        note=text,
        position=validate_position(given.position),
    )


class Decision(NamedTuple):
    """One validated decision waiting to be appended (see :meth:`Ledger.decide_many`).

    Attributes:
        site_id: The site decided on.
        decision: One of :data:`~fieldtruth.review.records.DECISIONS`.
        method: One of :data:`~fieldtruth.review.records.METHODS`.
        reviewer: The reviewer's id in canonical form (see :func:`reviewer_key`).
        evidence: :meth:`Evidence.to_json` of the evidence (with ``position`` when the person recorded one).
        visited_at: When the person visited or decided, UTC ISO 8601 (or a date), or None when not given.
    """

    site_id: str
    decision: str
    method: str
    reviewer: str
    evidence: dict[str, Any]
    visited_at: str | None = None


def validated(
    site_id: str,
    decision: str,
    method: str,
    reviewer: str,
    *,
    note: str = "",
    evidence: Evidence | Mapping[str, Any] | None = None,
    visited_at: object = None,
) -> Decision:
    """Check one decision's values and return it ready to append (the site is checked on append).

    The reviewer id is stored in its canonical form; ``visited_at`` is normalised to UTC.

    Raises:
        InvalidDecisionError: If a value breaks the rules of this module.
    """
    validate_choice(decision, DECISIONS, "the decision")
    validate_choice(method, METHODS, "the method")
    return Decision(
        site_id,
        decision,
        method,
        validate_reviewer(reviewer),
        make_evidence(evidence, note).to_json(),
        validate_visited_at(visited_at),
    )

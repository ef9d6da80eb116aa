"""Decisions files exported from a restricted map: check them, then turn them into ledger decisions.

A reviewer records decisions on the map (``maps/vendor/fieldtruth-decide.js``) and exports them as one
JSON file. The page writes it as ``JSON.stringify(document, null, 1)`` and appends the authentication
code as the last member, so the file always ends with::

    ,
     "mac": "<64 hex: HMAC-SHA256 over the exact UTF-8 bytes of the file before the comma, plus "\\n}">"
    }

The key is the map's own (:mod:`fieldtruth.review.mapkeys`). The code covers every byte before it, so a
file edited after export (one byte is enough), made for another run, or forged without the map is
refused whole before anything is applied. The document names the run (``run``, ``run_id``) and the map
(``map_id``, ``map_made``); each decision names a site by its id only (never its coordinates), the
``basis`` (the sequence number of the site's newest ledger entry when the map was drawn, 0 if none),
decision, method, reviewer, note, ``visited_at`` (ISO 8601 UTC), the optional ``position`` the person
chose to record ``{lat, lon, accuracy_m}`` and ``photos`` (SHA-256 digests only). Every decision passes
the ledger's own rules (:mod:`fieldtruth.review.rules`): the reviewer id is stored in its canonical form,
the visit time and position enter the ledger (the position inside the erasable evidence). Importing the
same file twice records nothing the second time; a decision on a site whose ledger moved on since the
map was drawn is *stale*: reported, and applied only when asked for.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple

import pydantic

from fieldtruth.review.errors import DecisionsFileError, FieldFileError, StaleDecisionsError
from fieldtruth.review.ledger import Decision, Ledger, validated
from fieldtruth.review.mapkeys import MapKey, map_key, run_id
from fieldtruth.review.records import LedgerEntry, evidence_text
from fieldtruth.review.rules import CLOCK_SKEW, reviewer_key
from fieldtruth.runfiles import MAP_KEYS

log = logging.getLogger(__name__)

FORMAT = "fieldtruth-decisions"
VERSION = 1
STALE_CHOICES: tuple[str, ...] = ("refuse", "skip", "apply")
_TAIL = re.compile(r',\n "mac": "([0-9a-f]{64})"\n\}\n?\Z')
_SNIFF = re.compile(r'\A\s*\{\s*"format"\s*:\s*"' + FORMAT + '"')


def _utc(value: str, what: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"expected {what} as an ISO 8601 time with a time zone; got {value!r}") from exc
    if when.tzinfo is None:
        raise ValueError(f"expected {what} with a time zone (e.g. ending in Z); got {value!r}")
    return when


class MapDecision(pydantic.BaseModel):
    """One decision of a decisions file, as the map wrote it."""

    model_config = pydantic.ConfigDict(extra="forbid")

    id: str = pydantic.Field(pattern=r"^[0-9a-f]{32}$")
    site_id: str = pydantic.Field(min_length=1)
    basis: int = pydantic.Field(ge=0)
    decision: str
    method: str
    reviewer: str
    note: str = ""
    visited_at: str
    recorded_at: str
    position: dict[str, Any] | None = None
    photos: list[str] = []

    @pydantic.field_validator("recorded_at")
    @classmethod
    def _time(cls, value: str) -> str:
        _utc(value, "the time")
        return value

    def to_decision(self) -> Decision:
        """Apply the ledger's own rules: canonical reviewer id, visit time in UTC, position checked.

        Raises:
            InvalidDecisionError: If a value breaks them (a ValueError).
        """
        evidence: dict[str, Any] = {"photos": self.photos}
        if self.position is not None:
            evidence["position"] = self.position
        return validated(
            self.site_id,
            self.decision,
            self.method,
            self.reviewer,
            note=self.note,
            evidence=evidence,
            visited_at=self.visited_at,
        )


class DecisionsFile(pydantic.BaseModel):
    """The whole document (the ``mac`` member included)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    format: Literal["fieldtruth-decisions"]
    version: Literal[1]
    statement: str = ""
    run: str
    run_id: str = pydantic.Field(pattern=r"^[0-9a-f]{32}$")
    map_id: str = pydantic.Field(pattern=r"^[0-9a-f]{32}$")
    map_made: str
    sealed: bool
    exported_at: str
    decisions: list[dict[str, Any]]
    mac: str

    @pydantic.field_validator("map_made", "exported_at")
    @classmethod
    def _time(cls, value: str) -> str:
        _utc(value, "the time")
        return value


class VerifiedFile(NamedTuple):
    """A decisions file whose code matched its map's key: its document, text and key."""

    path: Path
    text: str
    doc: DecisionsFile
    key: MapKey


class ImportReport(NamedTuple):
    """What :func:`import_decisions_file` did."""

    recorded: list[LedgerEntry]
    already: int
    stale: list[str]
    stale_applied: bool


def is_decisions_file(path: Path) -> bool:
    """True when ``path`` looks like a decisions file exported from a map (its first member says so)."""
    try:
        with Path(path).open("r", encoding="utf-8-sig") as handle:
            head = handle.read(200)
    except (OSError, UnicodeDecodeError):
        return False
    return bool(_SNIFF.match(head))


def sign(text_without_mac: str, key: bytes) -> str:
    """Append the authentication code to a decisions document (the Python mirror of the page's export).

    Args:
        text_without_mac: ``json.dumps(document, indent=1)`` (ends with ``"\\n}"``).
        key: The map's key.

    Returns:
        The file's text.
    """
    if not text_without_mac.endswith("\n}"):
        raise ValueError("expected a document written with indent=1, ending in '\\n}'")
    code = hmac.new(key, text_without_mac.encode("utf-8"), hashlib.sha256).hexdigest()
    return f'{text_without_mac[:-2]},\n "mac": "{code}"\n}}\n'


def _refuse(path: Path, why: str, fix: str) -> DecisionsFileError:
    return DecisionsFileError(f"refused {str(path)!r}: {why}. Nothing was applied. {fix}")


def read_decisions_file(path: Path) -> tuple[str, DecisionsFile]:
    """Read and parse a decisions file without checking its code (see :func:`verify_decisions_file`).

    Raises:
        DecisionsFileError: If it is not UTF-8 JSON in the decisions-file format.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
        doc = DecisionsFile.model_validate(json.loads(text))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _refuse(
            path,
            f"expected a decisions file exported from a fieldtruth map; {detail}",
            "Export the file from the map again; do not open and save it in another program.",
        ) from exc
    return text, doc


def verify_decisions_file(run_dir: Path, path: Path) -> VerifiedFile:
    """Check that a decisions file was made by a map of this run and not changed since.

    Raises:
        DecisionsFileError: If the file is damaged or edited, made for another run, signed by a map
            this run never drew, or signed with another key.
    """
    path = Path(path)
    text, doc = read_decisions_file(path)
    again = "Export the decisions again from the map you recorded them on."
    here, this_run = Path(run_dir).name, run_id(run_dir)
    if this_run != doc.run_id:
        raise _refuse(
            path,
            f"it was made on a map of another run ({doc.run!r}, id {doc.run_id}), not of "
            f"{here!r} (id {this_run or 'none yet: no map of it was drawn'})",
            "Import it into the run folder it came from.",
        )
    key = map_key(run_dir, doc.map_id)
    if key is None:
        raise _refuse(
            path,
            f"it names map {doc.map_id}, which the run {here!r} never drew (no key for it in {MAP_KEYS})",
            "Import it into the run folder whose map it came from.",
        )
    tail = _TAIL.search(text)
    signed = text[: tail.start()] + "\n}" if tail else ""
    expected = hmac.new(key.key, signed.encode("utf-8"), hashlib.sha256).hexdigest()
    if tail is None or not hmac.compare_digest(expected, tail.group(1)) or doc.mac != tail.group(1):
        raise _refuse(
            path,
            "its authentication code does not match: the file was changed after it was "
            "exported, or signed without this map's key",
            again,
        )
    if json.loads(signed) != doc.model_dump(exclude={"mac"}, exclude_unset=True):
        raise _refuse(path, "it repeats a member, so what was signed is not what it says", again)
    return VerifiedFile(path, text, doc, key)


def _line(text: str, decision_id: object) -> int:
    at = text.find(f'"{decision_id}"') if isinstance(decision_id, str) else -1
    return text.count("\n", 0, at) + 1 if at >= 0 else 0


class _Row(NamedTuple):
    """One decision of the file that passed the ledger's rules: where it is, as written, as validated."""

    line: int
    raw: MapDecision
    decision: Decision


def _after_export(visited_at: str | None, exported: datetime) -> bool:
    """True when a (normalised) visit time or date lies after the export, beyond the clock skew."""
    if visited_at is None:
        return False
    if len(visited_at) == 10:  # a date
        return date.fromisoformat(visited_at) > (exported + CLOCK_SKEW).date()
    return datetime.fromisoformat(visited_at) > exported + CLOCK_SKEW


def _rows(verified: VerifiedFile) -> tuple[list[_Row], list[tuple[int, str]]]:
    """Validate every decision by the ledger's rules; return the valid ones and the problems found."""
    exported = _utc(verified.doc.exported_at, "exported_at")
    rows, problems = [], []
    for raw in verified.doc.decisions:
        line = _line(verified.text, raw.get("id"))
        try:
            row = MapDecision.model_validate(raw)
            decision = row.to_decision()
            if _after_export(decision.visited_at, exported):
                raise ValueError(
                    f"the visit time {row.visited_at} is after the export ({verified.doc.exported_at})"
                )
        except pydantic.ValidationError as exc:
            problems.append(
                (line, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
            )
            continue
        except ValueError as exc:
            problems.append((line, str(exc)))
            continue
        rows.append(_Row(line, row, decision))
    return rows, problems


class _Plan(NamedTuple):
    new: list[Decision]
    stale: list[tuple[Decision, str]]
    already: int


def _identity(decision: Decision | LedgerEntry) -> tuple[str | None, ...]:
    """What makes two decisions the same one: site, canonical reviewer, decision, method, evidence, visit."""
    return (
        decision.site_id,
        reviewer_key(decision.reviewer),
        decision.decision,
        decision.method,
        evidence_text(decision.evidence or {}),
        decision.visited_at,
    )


def _plan(rows: list[_Row], ledger: Ledger) -> tuple[_Plan, list[tuple[int, str]]]:
    """Sort decisions into new, stale and already recorded; report unknown sites and repeats.

    Reviewer ids are compared in their canonical form (``RV07`` is ``rv07``): one person decides once
    per site in a file, and a decision is "already in the ledger" when the same person recorded the same
    decision, method, evidence and visit time on the site before.
    """
    sites = set(ledger.sites())
    newest: dict[str, LedgerEntry] = {}
    existing = set()
    for entry in ledger.entries():
        newest[entry.site_id] = entry
        existing.add(_identity(entry))
    seen: dict[tuple[str, str], int] = {}
    new, stale, already, problems = [], [], 0, []
    for line, raw, decision in rows:
        key = (decision.site_id, decision.reviewer)
        if decision.site_id not in sites:
            problems.append((line, f"unknown site {decision.site_id!r} (not in this run, or erased)"))
        elif key in seen:
            problems.append(
                (line, f"duplicate: reviewer {key[1]!r} already decides on {key[0]!r} at line {seen[key]}")
            )
        elif _identity(decision) in existing:
            already += 1
        elif decision.site_id in newest and newest[decision.site_id].seq > raw.basis:
            last = newest[decision.site_id]
            stale.append(
                (
                    decision,
                    f"{decision.site_id}: the map showed entry #{raw.basis}, the ledger now has #{last.seq} "
                    f"({last.decision} by {last.reviewer} at {last.decided_at})",
                )
            )
        else:
            new.append(decision)
        seen.setdefault(key, line)
    return _Plan(new, stale, already), problems


def apply_decisions(ledger: Ledger, decisions: Sequence[Decision]) -> list[LedgerEntry]:
    """Append validated decisions, with their visit times and positions, in one transaction (all or none)."""
    return ledger.decide_many(decisions)


def import_decisions_file(run_dir: Path, path: Path, *, stale: str = "refuse") -> ImportReport:
    """Verify a decisions file, check every decision, then record the new ones in one transaction.

    Args:
        run_dir: The run folder the map was drawn from.
        path: The decisions file.
        stale: What to do with stale decisions: ``refuse`` (the whole file), ``skip`` them, or
            ``apply`` them too (after the newer entries, so they become the site's status).

    Returns:
        What was recorded, how many decisions were already in the ledger, and the stale ones.

    Raises:
        DecisionsFileError: If the file is damaged, edited, forged or for another run.
        FieldFileError: If a decision breaks the ledger's rules (every bad one listed); nothing applied.
        StaleDecisionsError: If ``stale="refuse"`` and some decision is stale; nothing applied.
    """
    if stale not in STALE_CHOICES:
        raise ValueError(f"expected stale to be one of {STALE_CHOICES}; got {stale!r}.")
    verified = verify_decisions_file(run_dir, path)
    rows, problems = _rows(verified)
    if not verified.doc.decisions:
        problems.append((1, "no decisions in the file"))
    with Ledger.of_run(run_dir) as ledger:
        plan, more = _plan(rows, ledger)
        if problems or more:
            raise FieldFileError(str(path), sorted(problems + more))
        notes = [why for _, why in plan.stale]
        if notes and stale == "refuse":
            raise StaleDecisionsError(str(path), notes)
        todo = plan.new + ([decision for decision, _ in plan.stale] if stale == "apply" else [])
        recorded = apply_decisions(ledger, todo) if todo else []
    log.info(
        "decisions file %s (map %s): %d recorded, %d already in the ledger, %d stale (%s)",
        path,
        verified.doc.map_id,
        len(recorded),
        plan.already,
        len(notes),
        stale,
    )
    return ImportReport(recorded, plan.already, notes, stale == "apply")

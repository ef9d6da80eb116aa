"""Importing decisions gathered in the field (CSV or GeoJSON, e.g. from a form tool).

Every row is validated with pydantic at the edge, then checked against the ledger: unknown or erased
sites, bad values and duplicate decisions are all reported with their line numbers, and nothing is
applied unless every row is valid. The valid file is appended in one transaction.

Columns (CSV header, or GeoJSON feature properties): ``site_id``, ``decision`` (confirmed, rejected,
uncertain, field-visit), ``method`` (imagery, field, other), ``reviewer`` (pseudonymous id), optional
``note``, ``scenes`` (``ID`` or ``ID:SHA256``, several separated by ``;``) and ``photos`` (SHA-256
digests separated by ``;``), and optional ``visited_at`` (when the person visited or decided: ISO 8601
with a time zone, or a date) and ``latitude``, ``longitude``, ``accuracy_m`` (where the person was, only
when they chose to record it; kept in the erasable evidence). A GeoJSON feature's geometry is never read:
the visit position comes from those properties only. Other columns are ignored and never stored.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from pathlib import Path
from typing import Any

import pydantic

from fieldtruth.review.errors import FieldFileError
from fieldtruth.review.ledger import Decision, Ledger, validated
from fieldtruth.review.records import evidence_text
from fieldtruth.review.rules import reviewer_key

log = logging.getLogger(__name__)

_SHA256_RE = re.compile(r"[0-9a-f]{64}")
FIELDS = ("site_id", "decision", "method", "reviewer", "note", "scenes", "photos", "visited_at", "latitude",
          "longitude", "accuracy_m")


def _split(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value]
    return [part.strip() for part in str(value).split(";") if part.strip()]


def scene_ref(text: str) -> dict[str, str | None]:
    """Parse ``ID`` or ``ID:SHA256`` (64 hex characters after the last colon) into a scene reference."""
    scene_id, _, sha = text.rpartition(":")
    if scene_id and _SHA256_RE.fullmatch(sha.lower()):
        return {"id": scene_id, "sha256": sha.lower()}
    return {"id": text, "sha256": None}


class FieldRow(pydantic.BaseModel):
    """One decision as a field file gives it (validated, normalised)."""

    model_config = pydantic.ConfigDict(extra="ignore", str_strip_whitespace=True)

    site_id: str = pydantic.Field(min_length=1)
    decision: str
    method: str
    reviewer: str
    note: str = ""
    scenes: list[str] = []
    photos: list[str] = []
    visited_at: str | None = None
    latitude: str | float | None = None
    longitude: str | float | None = None
    accuracy_m: str | float | None = None

    @pydantic.field_validator("decision", "method", mode="before")
    @classmethod
    def _word(cls, value: Any) -> Any:
        return value.strip().lower().replace("-", "_") if isinstance(value, str) else value

    @pydantic.field_validator("note", mode="before")
    @classmethod
    def _note(cls, value: Any) -> Any:
        return "" if value is None else value

    @pydantic.field_validator("visited_at", "latitude", "longitude", "accuracy_m", mode="before")
    @classmethod
    def _optional(cls, value: Any) -> Any:
        return None if value is None or (isinstance(value, str) and not value.strip()) else value

    def position(self) -> dict[str, Any] | None:
        """The visit position, when the row gives one (latitude and longitude both, or neither)."""
        if self.latitude is None and self.longitude is None:
            if self.accuracy_m is not None:
                raise ValueError("accuracy_m is given without latitude and longitude; give all three or none")
            return None
        if self.latitude is None or self.longitude is None:
            raise ValueError(
                "expected both latitude and longitude of the visit, or neither; got "
                f"latitude={self.latitude!r}, longitude={self.longitude!r}"
            )
        return {"lat": self.latitude, "lon": self.longitude, "accuracy_m": self.accuracy_m}

    @pydantic.field_validator("scenes", "photos", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> list[str]:
        return _split(value)

    def to_decision(self) -> Decision:
        """Apply the ledger's own rules (raises InvalidDecisionError, a ValueError)."""
        evidence: dict[str, Any] = {"scenes": [scene_ref(s) for s in self.scenes], "photos": self.photos}
        position = self.position()
        if position is not None:
            evidence["position"] = position
        return validated(self.site_id, self.decision, self.method, self.reviewer, note=self.note,
                         evidence=evidence, visited_at=self.visited_at)


def _csv_rows(text: str) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows, start = [], 2
    for row in reader:
        rows.append((start, {k: v for k, v in row.items() if k is not None}))
        start = reader.line_num + 1
    return rows


def _geojson_rows(text: str) -> list[tuple[int, dict[str, Any]]]:
    """Return (line, properties) per feature, the line being where the feature starts in the file."""
    decoder = json.JSONDecoder()
    doc = json.loads(text)
    if not isinstance(doc, dict) or not isinstance(doc.get("features"), list):
        raise ValueError("expected a GeoJSON FeatureCollection with a 'features' list")
    at = _features_array_start(text, decoder)
    rows = []
    for index, _ in enumerate(doc["features"]):
        while text[at] in " \t\r\n,":
            at += 1
        feature, end = decoder.raw_decode(text, at)
        line = text.count("\n", 0, at) + 1
        props = feature.get("properties") if isinstance(feature, dict) else None
        rows.append((line, props if isinstance(props, dict) else {"__error__": f"feature {index} has no properties"}))
        at = end
    return rows


def _features_array_start(text: str, decoder: json.JSONDecoder) -> int:
    """Find the offset just after the '[' of the top-level "features" member."""
    at = text.index("{") + 1
    while True:
        while text[at] in " \t\r\n,":
            at += 1
        key, at = decoder.raw_decode(text, at)
        while text[at] in " \t\r\n:":
            at += 1
        if key == "features":
            return at + 1
        _, at = decoder.raw_decode(text, at)


def read_field_file(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """Read a CSV or GeoJSON field file into (line, raw row) pairs.

    Raises:
        FieldFileError: If the file cannot be read or parsed at all (reported as line 0 or the JSON line).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
        if path.suffix.lower() in (".geojson", ".json"):
            return _geojson_rows(text)
        return _csv_rows(text)
    except json.JSONDecodeError as exc:
        raise FieldFileError(str(path), [(exc.lineno, f"not valid JSON: {exc.msg}")]) from exc
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as exc:
        raise FieldFileError(str(path), [(0, f"cannot read the file: {exc}")]) from exc


def _message(exc: pydantic.ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg']} (got {e.get('input')!r})" for e in exc.errors())


def check_rows(rows: list[tuple[int, dict[str, Any]]], ledger: Ledger) -> tuple[list[Decision], list[tuple[int, str]]]:
    """Validate every row; return the decisions and the problems (line, message) found."""
    sites = set(ledger.sites())
    existing = {
        (e.site_id, reviewer_key(e.reviewer), e.decision, e.method, evidence_text(e.evidence or {}),
         e.visited_at) for e in ledger.entries()
    }
    seen: dict[tuple[str, str], int] = {}
    decisions, problems = [], []
    for line, raw in rows:
        try:
            if "__error__" in raw:
                raise ValueError(raw["__error__"])
            decision = FieldRow.model_validate(raw).to_decision()
        except pydantic.ValidationError as exc:
            problems.append((line, _message(exc)))
            continue
        except ValueError as exc:
            problems.append((line, str(exc)))
            continue
        key = (decision.site_id, decision.reviewer)
        if decision.site_id not in sites:
            problems.append((line, f"unknown site {decision.site_id!r} (not in this run, or erased)"))
        elif key in seen:
            problems.append((line, f"duplicate: reviewer {key[1]!r} already decides on {key[0]!r} at line {seen[key]}"))
        elif (*key, decision.decision, decision.method, evidence_text(decision.evidence),
              decision.visited_at) in existing:
            problems.append((line, f"duplicate: this decision on {key[0]!r} by {key[1]!r} is already in the ledger"))
        else:
            seen[key] = line
            decisions.append(decision)
    return decisions, problems


def import_field_file(run_dir: Path, path: Path) -> int:
    """Validate a field file completely, then append all its decisions in one transaction.

    Returns:
        The number of decisions appended.

    Raises:
        FieldFileError: If any row is bad (every bad row is listed with its line); nothing is applied.
    """
    rows = read_field_file(path)
    if not rows:
        raise FieldFileError(str(path), [(1, "no decisions in the file")])
    with Ledger.of_run(run_dir) as ledger:
        decisions, problems = check_rows(rows, ledger)
        if problems:
            raise FieldFileError(str(path), problems)
        ledger.decide_many(decisions)
    log.info("imported %d decision(s) from %s", len(decisions), path)
    return len(decisions)

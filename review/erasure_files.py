"""What erasure does to one file of a run folder: rewrite it without the site, delete it, or leave it.

Parquet files with a ``site_id`` column, GeoJSON files whose features carry ``site_id`` and CSV files
with a ``site_id`` column (comma, semicolon or tab separated; UTF-8, UTF-16 or UTF-32, with or without a
BOM, written back in the same encoding) are rewritten without the site's rows. A rewritten text that
would still name the site, and any other file that names it (:mod:`~fieldtruth.review.scrub`), is
deleted instead: the site's chips, every HTML map, GeoPackage or KML exports, archives holding a copy.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import shapely

from fieldtruth.review.errors import ErasureError
from fieldtruth.review.scrub import Unreadable, decode_text, mentions
from fieldtruth.review.sitedata import geometry_column
from fieldtruth.runfiles import CHIPS, MAPS

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".geojson", ".json", ".csv", ".tsv", ".txt")
_DELIMITERS = (",", ";", "\t", "|")


@dataclass(frozen=True)
class FileAction:
    """One planned change: ``write`` makes the new file (None: delete it)."""

    path: Path
    rel: Path
    write: Callable[[Path], None] | None
    is_map: bool = False
    warn: bool = False


def _geo_metadata(table: pa.Table, path: Path) -> pa.Table:
    """Recompute the GeoParquet bbox of the remaining rows so it cannot keep the erased point."""
    meta = dict(table.schema.metadata or {})
    if b"geo" not in meta:
        return table
    geo = json.loads(meta[b"geo"])
    column = geometry_column(path)
    spec = geo.get("columns", {}).get(column, {})
    if "bbox" in spec:
        geoms = shapely.from_wkb(table.column(column).to_pylist()) if table.num_rows else []
        bounds = shapely.total_bounds(geoms) if len(geoms) else None
        if bounds is None or any(b != b for b in bounds):
            spec.pop("bbox")
        else:
            spec["bbox"] = [float(b) for b in bounds]
    meta[b"geo"] = json.dumps(geo).encode()
    return table.replace_schema_metadata(meta)


def _names_in_strings(table: pa.Table, site_id: str, skip: str = "site_id") -> str | None:
    """Return the first string column (other than ``skip``) with a value containing ``site_id``."""
    for name in table.column_names:
        column = table.column(name)
        textual = pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
        if name != skip and textual and pc.any(pc.match_substring(column, site_id)).as_py():
            return name
    return None


def _plan_parquet(path: Path, rel: Path, site_id: str) -> FileAction | None:
    try:
        table = pq.read_table(path)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise ErasureError(f"it cannot be read as Parquet ({exc})") from exc
    if "site_id" not in table.column_names:
        return FileAction(path, rel, None, warn=True) if _names_in_strings(table, site_id, "") else None
    mask = pc.not_equal(table.column("site_id").cast(pa.string()), pa.scalar(site_id))
    kept = table.filter(pc.fill_null(mask, True))
    other = _names_in_strings(kept, site_id)
    if other is not None:
        raise ErasureError(f"its column {other!r} still names the site once its rows are removed")
    if kept.num_rows == table.num_rows:
        return None
    kept = _geo_metadata(kept, path)
    return FileAction(path, rel, lambda tmp: pq.write_table(kept, tmp))


def _without_site_geojson(text: str, site_id: str) -> str | None:
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("features"), list):
        return None
    features = [
        f
        for f in doc["features"]
        if not (isinstance(f, dict) and (f.get("properties") or {}).get("site_id") == site_id)
    ]
    if len(features) == len(doc["features"]):
        return None
    doc["features"] = features
    doc.pop("bbox", None)
    return json.dumps(doc, ensure_ascii=False)


def _without_site_csv(text: str, site_id: str) -> str | None:
    header = text.split("\n", 1)[0]
    delimiter = next(
        (d for d in _DELIMITERS if "site_id" in [c.strip().strip('"') for c in header.split(d)]), None
    )
    if delimiter is None:
        return None
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    col = [c.strip() for c in rows[0]].index("site_id")
    kept = [rows[0]] + [r for r in rows[1:] if len(r) <= col or r[col].strip() != site_id]
    if len(kept) == len(rows):
        return None
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(kept)
    return out.getvalue()


def _plan_text(path: Path, rel: Path, site_id: str, patterns: tuple[bytes, ...]) -> FileAction | None | bool:
    """Plan a text file; return False when it is not decodable text (search its bytes instead)."""
    data = path.read_bytes()
    decoded = decode_text(data)
    if decoded is None:
        return False
    text, bom, encoding = decoded
    scrub = _without_site_csv if path.suffix.lower() in (".csv", ".tsv", ".txt") else _without_site_geojson
    new_text = scrub(text, site_id)
    if new_text is None:
        return FileAction(path, rel, None, warn=True) if any(p in data for p in patterns) else None
    new = bom + new_text.encode(encoding)
    if any(p in new for p in patterns):
        return FileAction(path, rel, None, warn=True)
    return FileAction(path, rel, lambda tmp: tmp.write_bytes(new))


def plan_file(path: Path, rel: Path, site_id: str, patterns: tuple[bytes, ...]) -> FileAction | None:
    """Decide what erasing ``site_id`` does to one file (None: nothing to do).

    Raises:
        ErasureError: If the file cannot be read or searched (the message says why, not its content).
    """
    if rel.parts[0] == MAPS and path.suffix.lower() in (".html", ".htm"):
        return FileAction(path, rel, None, is_map=True)
    if rel.parts[0] == CHIPS and path.stem == site_id:
        return FileAction(path, rel, None)
    try:
        if path.suffix.lower() == ".parquet":
            return _plan_parquet(path, rel, site_id)
        if path.suffix.lower() in TEXT_SUFFIXES:
            action = _plan_text(path, rel, site_id, patterns)
            if action is not False:
                return action  # type: ignore[return-value]
        with open(path, "rb") as handle:
            return FileAction(path, rel, None, warn=True) if mentions(handle, patterns) else None
    except Unreadable as exc:
        raise ErasureError(str(exc)) from exc
    except OSError as exc:
        raise ErasureError(f"it cannot be read ({exc.strerror or exc})") from exc

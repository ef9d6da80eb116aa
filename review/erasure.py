"""Erasure of one site from every file of a run folder, leaving a tombstone in the ledger.

Removes the site's rows from every Parquet, GeoJSON and CSV file of the run folder that has a
``site_id`` column or feature property (rewritten atomically, the old file overwritten with zeros before
it is released), deletes any other file that still names the site (GeoPackage or KML exports: export
them again), its chip image and every HTML map (maps embed site positions; regenerate them with
``fieldtruth map``), erases the evidence and notes of its decisions in the ledger (secure_delete,
VACUUM) and appends a tombstone saying when and why, not what.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import shapely

from fieldtruth.atomicfile import atomic_path
from fieldtruth.review.errors import ErasureError, InvalidDecisionError, UnknownSiteError
from fieldtruth.review.ledger import Ledger
from fieldtruth.review.records import MAX_NOTE_CHARS, LedgerEntry, validate_reviewer
from fieldtruth.review.sitedata import geometry_column
from fieldtruth.runfiles import TILES, RunFiles

log = logging.getLogger(__name__)

SKIP_DIRS = (TILES,)
"""Folders whose files carry no site_id (tile results); the pipelines room scrubs them itself."""


@dataclass(frozen=True)
class ErasureReport:
    """What :func:`forget_site` changed (paths relative to the run folder)."""

    rewritten: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    maps_deleted: tuple[str, ...] = ()
    tombstone_seq: int = 0


def shred_replace(path: Path, write: Callable[[Path], None] | None) -> None:
    """Replace ``path`` with what ``write`` makes (or delete it when None), zeroing the old bytes.

    The new content is written atomically (:func:`fieldtruth.atomicfile.atomic_path`); the old inode is
    kept open across the rename (or unlink) and overwritten with zeros before it is released.
    """
    with open(path, "r+b") as old:
        size = os.fstat(old.fileno()).st_size
        if write is None:
            path.unlink()
        else:
            with atomic_path(path) as tmp:
                write(tmp)
        old.seek(0)
        old.write(b"\0" * size)
        old.flush()
        os.fsync(old.fileno())


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


def _scrub_parquet(path: Path, site_id: str) -> bool:
    if "site_id" not in pq.read_schema(path).names:
        return False
    table = pq.read_table(path)
    mask = pc.not_equal(table.column("site_id"), pa.scalar(site_id))
    kept = table.filter(pc.fill_null(mask, True))
    if kept.num_rows == table.num_rows:
        return False
    kept = _geo_metadata(kept, path)
    shred_replace(path, lambda tmp: pq.write_table(kept, tmp))
    return True


def _scrub_geojson(path: Path, site_id: str) -> bool:
    doc = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or not isinstance(doc.get("features"), list):
        return False
    features = [f for f in doc["features"] if (f.get("properties") or {}).get("site_id") != site_id]
    if len(features) == len(doc["features"]):
        return False
    doc["features"] = features
    doc.pop("bbox", None)
    text = json.dumps(doc, ensure_ascii=False)
    shred_replace(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return True


def _scrub_csv(path: Path, site_id: str) -> bool:
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")))
    if not rows or "site_id" not in rows[0]:
        return False
    col = rows[0].index("site_id")
    kept = [rows[0]] + [r for r in rows[1:] if len(r) <= col or r[col] != site_id]
    if len(kept) == len(rows):
        return False
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(kept)
    shred_replace(path, lambda tmp: tmp.write_text(out.getvalue(), encoding="utf-8"))
    return True


_SCRUBBERS = {".parquet": _scrub_parquet, ".geojson": _scrub_geojson, ".csv": _scrub_csv}


def _scrub_files(run_dir: Path, site_id: str) -> list[str]:
    """Rewrite every file with a ``site_id`` column or property without the site; return those rewritten."""
    rewritten = []
    for path in sorted(run_dir.rglob("*")):
        scrub = _SCRUBBERS.get(path.suffix.lower())
        rel = path.relative_to(run_dir)
        if scrub is None or not path.is_file() or rel.parts[0] in SKIP_DIRS:
            continue
        try:
            if scrub(path, site_id):
                rewritten.append(str(rel))
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise ErasureError(
                f"expected to rewrite {str(path)!r} without site {site_id!r}; it failed: {exc}. Fix or remove "
                "that file and run `fieldtruth forget` again (the ledger was not changed yet)."
            ) from exc
    return rewritten


def check_erasure_args(reason: str, by: str) -> None:
    """Raise :class:`InvalidDecisionError` unless ``by`` is pseudonymous and ``reason`` is a short text."""
    validate_reviewer(by)
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_NOTE_CHARS:
        raise InvalidDecisionError(
            f"expected a reason for the erasure (1-{MAX_NOTE_CHARS} characters); got {reason!r}. "
            "Say why, e.g. 'owner request', without repeating the erased data."
        )


def _delete_derived(run_dir: Path, site_id: str) -> tuple[list[str], list[str]]:
    """Delete the site's chip images and every HTML map (maps embed positions; regenerate them).

    Returns:
        The chips deleted, and the maps deleted.
    """
    files, chips, maps = RunFiles(run_dir), [], []
    for chip in sorted(files.chips.glob(f"{site_id}.*")) if files.chips.is_dir() else []:
        shred_replace(chip, None)
        chips.append(str(chip.relative_to(run_dir)))
    for page in sorted(files.maps.glob("*.html")) if files.maps.is_dir() else []:
        shred_replace(page, None)
        maps.append(str(page.relative_to(run_dir)))
    return chips, maps


def _mentions(path: Path, needle: bytes, chunk: int = 1 << 20) -> bool:
    """Return True when ``needle`` occurs in the file (read in chunks)."""
    tail = b""
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            if needle in tail + block:
                return True
            tail = block[-len(needle):]
    return False


def _delete_other_mentions(run_dir: Path, site_id: str) -> list[str]:
    """Delete any other file (e.g. a GeoPackage or KML export) that still names the site; return them."""
    ledger, deleted = RunFiles(run_dir).ledger, []
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(run_dir)
        if not path.is_file() or path == ledger or rel.parts[0] in SKIP_DIRS:
            continue
        if _mentions(path, site_id.encode()):
            shred_replace(path, None)
            deleted.append(str(rel))
            log.warning("deleted %s: it names erased site %s and cannot be rewritten; re-export it", rel, site_id)
    return deleted


def forget_site(run_dir: Path, site_id: str, reason: str, by: str = "erasure") -> ErasureReport:
    """Erase a site from the run folder and leave a tombstone in the ledger.

    Args:
        run_dir: The run folder.
        site_id: The site to erase.
        reason: Why (kept in the tombstone; do not put the erased data in it).
        by: Pseudonymous id of who asked for or performed the erasure.

    Raises:
        UnknownSiteError: If the site is unknown or already erased (no file is touched).
        LedgerTamperedError: If the chain does not verify before erasure (no file is touched).
        ErasureError: If a file cannot be rewritten.
    """
    check_erasure_args(reason, by)
    with Ledger.of_run(run_dir, register=RunFiles(run_dir).detections.exists()) as ledger:
        ledger.verify().raise_for_error()
        if site_id not in ledger.sites():
            raise UnknownSiteError(
                f"expected a site of this run that is not erased yet; got {site_id!r}. "
                "List sites with `fieldtruth review queue RUN`."
            )
        rewritten = _scrub_files(run_dir, site_id)
        chips, maps = _delete_derived(run_dir, site_id)
        others = _delete_other_mentions(run_dir, site_id)
        tomb: LedgerEntry = ledger.erase_site(site_id, reason, by)
    report = ErasureReport(tuple(rewritten), tuple(chips + others), tuple(maps), tomb.seq)
    log.info("erased site %s: rewrote %s, deleted %s", site_id, report.rewritten, report.deleted + report.maps_deleted)
    return report

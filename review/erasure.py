"""Erasure of one site from every file of a run folder, leaving a tombstone in the ledger.

Erasure looks before it acts. :func:`plan_erasure` reads every file of the run folder and decides,
for each, whether it is rewritten without the site (Parquet, GeoJSON and CSV files with a ``site_id``
column or property, in UTF-8, UTF-16 or UTF-32), deleted (the site's chips, every HTML map, and any
other file that still names the site or holds its exact coordinates, inside zip, tar, gzip, bzip2 or xz
archives too), or left alone; a file it cannot see into (a 7z or rar archive, an encrypted zip member,
an unreadable Parquet file) makes it refuse up front, naming every such file, before anything is
touched. :func:`carry_out` then rewrites and deletes (the old bytes overwritten with zeros before they
are released) and erases the site in the ledger last: evidence, site facts and salts of its decisions
set to NULL (secure_delete, VACUUM) and a tombstone appended saying when and why, not what.

A run killed part-way is finished by running the erasure again: files already done no longer name
the site, and the ledger still knows its position until its own step, the last. Erasing a site that
is already erased re-checks the folder and finishes whatever is left.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from fieldtruth.atomicfile import atomic_path
from fieldtruth.review.erasure_files import FileAction, plan_file
from fieldtruth.review.errors import ErasureError, InvalidDecisionError, UnknownSiteError
from fieldtruth.review.ledger import Ledger
from fieldtruth.review.records import MAX_NOTE_CHARS, TOMBSTONE
from fieldtruth.review.rules import validate_reviewer
from fieldtruth.review.scrub import needles
from fieldtruth.review.sitedata import site_facts
from fieldtruth.runfiles import LEDGER, TILES, RunFiles

__all__ = ["ErasurePlan", "ErasureReport", "carry_out", "check_erasure_args", "forget_site", "plan_erasure"]

log = logging.getLogger(__name__)

SKIP_DIRS = (TILES,)
"""Folders whose files carry raw detections without site rows (tile results); the pipelines room plans
their rewrite itself (:func:`fieldtruth.pipelines.forget.forget_everywhere`)."""


@dataclass(frozen=True)
class ErasureReport:
    """What an erasure changed (paths relative to the run folder)."""

    rewritten: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    maps_deleted: tuple[str, ...] = ()
    tombstone_seq: int = 0
    already_erased: bool = False


@dataclass
class ErasurePlan:
    """Everything an erasure will do, decided before any file is touched (see :func:`plan_erasure`)."""

    run_dir: Path
    site_id: str
    reason: str
    by: str
    actions: list[FileAction] = field(default_factory=list)
    lonlat: tuple[float, float] | None = None
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


def check_erasure_args(reason: str, by: str) -> str:
    """Return ``by`` in canonical form; raise :class:`InvalidDecisionError` unless it is pseudonymous and
    ``reason`` is a short text."""
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_NOTE_CHARS:
        raise InvalidDecisionError(
            f"expected a reason for the erasure (1-{MAX_NOTE_CHARS} characters); got {reason!r}. "
            "Say why, e.g. 'owner request', without repeating the erased data."
        )
    return validate_reviewer(by)


def _site_position(run_dir: Path, ledger: Ledger, site_id: str) -> list[tuple[float, float]]:
    """Every position the run records for the site: the ledger's and the detections' (they may differ)."""
    found = []
    registered = ledger.sites().get(site_id)
    if registered is not None and registered.lon is not None and registered.lat is not None:
        found.append((float(registered.lon), float(registered.lat)))
    if RunFiles(run_dir).detections.exists():
        detected = site_facts(run_dir).get(site_id)
        if detected is not None and detected.lon is not None and detected.lat is not None:
            found.append((detected.lon, detected.lat))
    return list(dict.fromkeys(found))


def plan_erasure(run_dir: Path, site_id: str, reason: str, by: str = "erasure") -> ErasurePlan:
    """Decide, file by file, how to erase a site from a run folder; touch nothing.

    Args:
        run_dir: The run folder.
        site_id: The site to erase.
        reason: Why (kept in the tombstone; do not put the erased data in it).
        by: Pseudonymous id of who asked for or performed the erasure.

    Raises:
        InvalidDecisionError: If ``reason`` or ``by`` break the rules.
        UnknownSiteError: If the site was never part of this run.
        LedgerTamperedError: If the chain does not verify.
        ErasureError: If any file cannot be read or searched; it names every such file.
    """
    by = check_erasure_args(reason, by)
    run_dir = Path(run_dir)
    with Ledger.of_run(run_dir, register=RunFiles(run_dir).detections.exists()) as ledger:
        ledger.verify().raise_for_error()
        erased = ledger.erased_sites()
        if site_id not in ledger.sites() and site_id not in erased:
            raise UnknownSiteError(
                f"expected a site of this run; got {site_id!r}. "
                "List sites with `fieldtruth review queue RUN`."
            )
        positions = _site_position(run_dir, ledger, site_id)
        tomb = max((e.seq for e in ledger.entries(site_id) if e.decision == TOMBSTONE), default=0)
    plan = ErasurePlan(
        run_dir, site_id, reason, by, lonlat=positions[0] if positions else None, tombstone_seq=tomb
    )
    patterns = needles([site_id], [v for point in positions for v in point])
    refused = []
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(run_dir)
        if rel.parts[0] in SKIP_DIRS or path.name.startswith(LEDGER):
            continue
        try:
            action = plan_file(path, rel, site_id, patterns)
        except ErasureError as exc:
            refused.append(f"{str(rel)!r}: {exc}")
            continue
        if action is not None:
            plan.actions.append(action)
    if refused:
        raise ErasureError(
            f"expected to be able to search every file of {str(run_dir)!r} for site {site_id!r}; cannot "
            f"search {len(refused)}: {'; '.join(refused)}. Nothing was changed: unpack, decrypt or remove "
            "those files (they may hold the site) and run `fieldtruth forget` again."
        )
    return plan


def carry_out(
    plan: ErasurePlan, *, before_ledger: Callable[[], Iterable[str]] | None = None
) -> ErasureReport:
    """Rewrite and delete what the plan says, run ``before_ledger``, then erase the site in the ledger.

    Args:
        plan: What :func:`plan_erasure` (and the rooms that add to its actions) decided.
        before_ledger: Run once the files are done, before the ledger; returns the files (relative to the
            run folder) it rewrote, for the report.

    Raises:
        ErasureError: If a file cannot be written; run the erasure again to finish it.
    """
    rewritten: list[str] = []
    deleted: list[str] = []
    maps_deleted: list[str] = []
    try:
        for action in plan.actions:
            shred_replace(action.path, action.write)
            target = rewritten if action.write is not None else (maps_deleted if action.is_map else deleted)
            target.append(str(action.rel))
            if action.write is None and not action.is_map and action.warn:
                log.warning(
                    "deleted %s: it names erased site %s and cannot be rewritten", action.rel, plan.site_id
                )
        if before_ledger is not None:
            rewritten.extend(before_ledger())
    except OSError as exc:
        raise ErasureError(
            f"expected to finish erasing site {plan.site_id!r} from {str(plan.run_dir)!r}; "
            f"writing failed: {exc}. "
            "Fix the cause and run `fieldtruth forget` again: it finishes what is left."
        ) from exc
    report = ErasureReport(tuple(rewritten), tuple(deleted), tuple(maps_deleted))
    if plan.tombstone_seq:
        return replace(report, tombstone_seq=plan.tombstone_seq, already_erased=True)
    with Ledger.of_run(plan.run_dir, register=False) as ledger:
        return replace(report, tombstone_seq=ledger.erase_site(plan.site_id, plan.reason, plan.by).seq)


def forget_site(run_dir: Path, site_id: str, reason: str, by: str = "erasure") -> ErasureReport:
    """Erase a site from the run folder (tile results aside) and leave a tombstone in the ledger.

    Raises:
        UnknownSiteError: If the site was never part of this run (no file is touched).
        LedgerTamperedError: If the chain does not verify before erasure (no file is touched).
        ErasureError: If a file cannot be searched (no file is touched) or written (run it again).
    """
    report = carry_out(plan_erasure(Path(run_dir), site_id, reason, by))
    log.info(
        "erased site %s: rewrote %s, deleted %s",
        site_id,
        report.rewritten,
        report.deleted + report.maps_deleted,
    )
    return report

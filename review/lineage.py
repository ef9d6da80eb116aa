"""Which runs of the same region a run is linked to: ``lineage.json`` in each run folder.

A scan given earlier runs of its region (``fieldtruth scan --previous RUN``) carries their site ids
forward: a lead found again keeps the id it had (the id stays random; it is never derived from the
place). The scan records the runs it was linked to in its own ``lineage.json`` (``previous``) and adds
itself to theirs (``later``), so a site's decisions follow it forward (:mod:`fieldtruth.review.carried`)
and its erasure reaches every run that holds it (``fieldtruth forget``).

The file names run folders (relative to the run folder, so a region folder moved whole keeps its
links) and nothing about any site::

    {"previous": ["../region-2026-01"], "later": ["../region-2026-07"]}

Like the rest of a run folder it is restricted: it names folders on the analyst's machine.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from fieldtruth.atomicfile import write_json
from fieldtruth.review.errors import LedgerError
from fieldtruth.runfiles import RunFiles

log = logging.getLogger(__name__)


class Lineage(NamedTuple):
    """The runs a run folder is linked to, each as an absolute path (resolved from the file's relative
    ones).

    Attributes:
        previous: Earlier runs whose site ids this run carried forward.
        later: Runs that carried this run's site ids forward.
    """

    previous: tuple[Path, ...] = ()
    later: tuple[Path, ...] = ()


def read_lineage(run_dir: Path) -> Lineage:
    """Return the runs ``run_dir`` is linked to (none when it has no ``lineage.json``).

    Raises:
        LedgerError: If ``lineage.json`` is not the JSON object described in this module.
    """
    path = RunFiles(Path(run_dir)).lineage
    if not path.is_file():
        return Lineage()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LedgerError(
            f"expected {str(path)!r} to be the JSON lineage a scan writes; reading it failed ({exc}). "
            "Restore it from a backup, or delete it to unlink the run from its region."
        ) from exc
    if not isinstance(doc, dict) or not all(
        isinstance(doc.get(k, []), list) and all(isinstance(p, str) for p in doc.get(k, []))
        for k in ("previous", "later")
    ):
        raise LedgerError(
            f"expected {str(path)!r} to hold lists of run folders under 'previous' and 'later'. "
            "Restore it from a backup, or delete it to unlink the run from its region."
        )
    base = Path(run_dir).resolve()
    return Lineage(tuple((base / p).resolve() for p in doc.get("previous", [])),
                   tuple((base / p).resolve() for p in doc.get("later", [])))


def _write(run_dir: Path, lineage: Lineage) -> None:
    """Write the lineage with paths relative to the run folder, so a region folder moved or copied
    whole keeps its links."""
    doc = {key: sorted({os.path.relpath(p, run_dir) for p in paths})
           for key, paths in (("previous", lineage.previous), ("later", lineage.later))}
    write_json(RunFiles(run_dir).lineage, doc)


def record_links(run_dir: Path, previous: Iterable[Path]) -> Lineage:
    """Record that ``run_dir`` carried the site ids of ``previous`` forward, in its lineage and theirs.

    Returns:
        The lineage written for ``run_dir``.
    """
    run_dir = Path(run_dir).resolve()
    earlier = tuple(dict.fromkeys(Path(p).resolve() for p in previous if Path(p).resolve() != run_dir))
    own = read_lineage(run_dir)
    mine = Lineage(tuple(dict.fromkeys((*own.previous, *earlier))), own.later)
    _write(run_dir, mine)
    for other in earlier:
        theirs = read_lineage(other)
        if run_dir not in theirs.later:
            _write(other, Lineage(theirs.previous, (*theirs.later, run_dir)))
    log.info("run %s linked to %d earlier run(s) of its region", run_dir, len(earlier))
    return mine


def linked_runs(run_dir: Path) -> tuple[Path, ...]:
    """Every run linked to ``run_dir``, earlier or later, directly or through other runs (itself excluded).

    A linked folder that no longer exists is still listed: the caller decides whether that is an error
    (erasure must reach every run, so ``forget`` refuses) or not (carried decisions skip it with a warning).

    Raises:
        LedgerError: If a lineage file on the way is malformed.
    """
    start = Path(run_dir).resolve()
    seen, todo = {start}, [start]
    while todo:
        current = todo.pop()
        if not current.is_dir():
            continue
        for other in (*read_lineage(current).previous, *read_lineage(current).later):
            if other not in seen:
                seen.add(other)
                todo.append(other)
    return tuple(sorted(seen - {start}))


def earlier_runs(run_dir: Path) -> tuple[Path, ...]:
    """The runs whose site ids ``run_dir`` carried, directly or through them, nearest first; missing
    folders included."""
    start = Path(run_dir).resolve()
    order: list[Path] = []
    frontier = [start]
    while frontier:
        step: list[Path] = []
        for current in frontier:
            if not current.is_dir():
                continue
            for other in read_lineage(current).previous:
                if other != start and other not in order and other not in step:
                    step.append(other)
        order.extend(sorted(step, reverse=True))
        frontier = step
    return tuple(order)

"""What a restricted map needs to record decisions on the device and export a signed decisions file.

The page script (``maps/vendor/fieldtruth-decide.js``) gets the run's and the map's identity, the map's
signing key (:mod:`fieldtruth.review.mapkeys`), a key for the decisions it keeps in the browser (sealed
maps only: they are stored encrypted), the ledger's rules (decisions, methods, the pattern of a
canonical reviewer id from :mod:`fieldtruth.review.rules`, the longest note) and, per lead, the sequence
number of the site's newest ledger entry (``seq``), so an import can tell a decision made on an old view
of the site. The file format is :mod:`fieldtruth.review.mapdecisions`.
"""

from __future__ import annotations

import base64
import logging
import secrets
from pathlib import Path
from typing import Any

from fieldtruth.review.ledger import Ledger
from fieldtruth.review.mapdecisions import FORMAT, VERSION
from fieldtruth.review.mapkeys import new_map_key
from fieldtruth.review.records import DECISIONS, MAX_NOTE_CHARS, METHODS
from fieldtruth.review.rules import REVIEWER_PATTERN

log = logging.getLogger(__name__)

STATEMENT = (
    "Decisions about leads recorded on a fieldtruth map. Import with: fieldtruth review import RUN FILE. "
    "Holds site ids, never site coordinates; a position is where the reviewer's device was, if recorded."
)
NOTE_CHARS = 500
"""The longest note the page accepts (the ledger allows more; field notes should be short)."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def site_basis(run_dir: Path) -> dict[str, int]:
    """Return site_id -> ``seq`` of its newest ledger entry (sites without decisions left out)."""
    basis: dict[str, int] = {}
    with Ledger.of_run(run_dir, register=False) as ledger:
        for entry in ledger.entries():
            basis[entry.site_id] = entry.seq
    return basis


def decide_payload(run_dir: Path, *, sealed: bool) -> dict[str, Any]:
    """Make the map's key (recorded in the run's keyring) and return the page's ``decide`` settings.

    Args:
        run_dir: The run folder.
        sealed: Whether the map is encrypted (then decisions kept in the browser are encrypted too).
    """
    run_dir = Path(run_dir)
    key = new_map_key(run_dir, sealed=sealed)
    log.info(
        "map %s of run %s can record decisions (signing key in the %s)",
        key.map_id,
        key.run_id,
        "sealed payload" if sealed else "page: anyone with the file can sign",
    )
    return {
        "format": FORMAT,
        "version": VERSION,
        "statement": STATEMENT,
        "run": run_dir.name,
        "runId": key.run_id,
        "mapId": key.map_id,
        "made": key.made,
        "sealed": sealed,
        "key": _b64(key.key),
        "storeKey": _b64(secrets.token_bytes(32)) if sealed else None,
        "decisions": list(DECISIONS),
        "methods": list(METHODS),
        "reviewer": REVIEWER_PATTERN,
        "maxNote": min(NOTE_CHARS, MAX_NOTE_CHARS),
    }

"""The keys of the maps a run has drawn: the run's identity and one signing key per restricted map.

Every restricted map gets a random 256-bit key when it is drawn. The map carries the key (inside the
encrypted payload of a sealed map; in the page itself of an unencrypted one) and signs the decisions
file it exports with it (HMAC-SHA256). The run folder keeps a copy of every key in ``map_keys.json``
(:data:`fieldtruth.runfiles.MAP_KEYS`, mode 0600: it can sign decisions for every map of the run), next
to a random run id, so ``fieldtruth review import`` can tell a file that came from one of this run's
maps, unchanged, from an edited, forged or foreign one.

What the key proves depends on the map: for a sealed map, that the file was made by someone who had the
map file AND its passphrase; for an unencrypted map, only that it was made by someone who had the map
file (anyone with the file can read the key). Neither says who the person was.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from fieldtruth.atomicfile import json_text, write_text
from fieldtruth.review.errors import DecisionsFileError
from fieldtruth.runfiles import RunFiles

log = logging.getLogger(__name__)

KEYRING_FORMAT = "fieldtruth-map-keys"
KEY_BYTES = 32


@dataclass(frozen=True)
class MapKey:
    """The identity and signing key of one drawn map.

    Attributes:
        run_id: The random id of the run the map belongs to (32 hex characters).
        map_id: The random id of the map (32 hex characters).
        key: The HMAC-SHA256 key (32 bytes).
        made: When the map was drawn (ISO 8601, UTC).
        sealed: Whether the map was encrypted (its key then lives only inside the sealed payload).
    """

    run_id: str
    map_id: str
    key: bytes
    made: str
    sealed: bool


def _read(path: Path) -> dict:
    if not path.is_file():
        return {"format": KEYRING_FORMAT, "version": 1, "run_id": secrets.token_hex(16), "maps": {}}
    try:
        ring = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DecisionsFileError(
            f"expected the run's map keys as JSON in {str(path)!r}; reading it failed: {exc}. Restore it "
            "from a backup (without it, decisions files from this run's maps cannot be checked)."
        ) from exc
    if (
        not isinstance(ring, dict)
        or ring.get("format") != KEYRING_FORMAT
        or not isinstance(ring.get("maps"), dict)
    ):
        raise DecisionsFileError(
            f"expected a {KEYRING_FORMAT!r} document in {str(path)!r}; got something else. "
            "Restore it from a backup."
        )
    return ring


def _write(path: Path, ring: dict) -> None:
    """Replace the keyring atomically, readable by the owner only."""
    write_text(path, json_text(ring), mode=0o600)


def run_id(run_dir: Path) -> str | None:
    """Return the run's id, or None when no map of it was drawn yet (nothing could be signed for it)."""
    path = RunFiles(Path(run_dir)).map_keys
    return str(_read(path)["run_id"]) if path.is_file() else None


def new_map_key(run_dir: Path, *, sealed: bool) -> MapKey:
    """Make a key for a map about to be drawn and record it in the run folder's keyring.

    Args:
        run_dir: The run folder.
        sealed: Whether the map will be encrypted.

    Returns:
        The new key, with the run's id (created on the first map).
    """
    path = RunFiles(Path(run_dir)).map_keys
    ring = _read(path)
    made = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    key = MapKey(str(ring["run_id"]), secrets.token_hex(16), secrets.token_bytes(KEY_BYTES), made, sealed)
    ring["maps"][key.map_id] = {"key": key.key.hex(), "made": made, "sealed": sealed}
    _write(path, ring)
    log.info("recorded the signing key of map %s in %s", key.map_id, path)
    return key


def map_key(run_dir: Path, map_id: str) -> MapKey | None:
    """Return the key of one of the run's maps, or None if this run never drew that map."""
    path = RunFiles(Path(run_dir)).map_keys
    if not path.is_file():
        return None
    ring = _read(path)
    entry = ring["maps"].get(map_id) if isinstance(map_id, str) else None
    if not isinstance(entry, dict):
        return None
    try:
        key = bytes.fromhex(str(entry["key"]))
    except (KeyError, ValueError) as exc:
        raise DecisionsFileError(
            f"expected a hex key for map {map_id!r} in {str(path)!r}; it is damaged."
        ) from exc
    return MapKey(str(ring["run_id"]), map_id, key, str(entry.get("made", "")), bool(entry.get("sealed")))

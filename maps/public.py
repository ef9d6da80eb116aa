"""What a map or export may say about the machine that made it: nothing.

Model cards record where the training imagery was (absolute local paths, which often name a user) and
run folders hold local paths too. Outputs that leave the machine carry the model card through
:func:`public_card` (training data reduced to scene ids, checksums, sizes and licences) and are passed
through :func:`without_local_names`, which replaces every string that is a local path, or names this
machine or the home folder, by :data:`REMOVED`. Public ``https://`` URLs are kept.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

REMOVED = "[local name removed]"
_TRAINING_KEYS = ("item_id", "id", "sha256", "size", "licence", "license")
_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
_URL = re.compile(r"^https?://[^\s]+$")
_NUMERIC = re.compile(r"^[0-9TZ:+\-./]+$")  # dates, date ranges (2026-01-15/2026-03-15), fractions


def _machine_names() -> tuple[str, ...]:
    names = {str(Path.home()), os.environ.get("USERPROFILE", ""), socket.gethostname(), socket.getfqdn()}
    return tuple(n for n in names if len(n) >= 4 and n not in ("localhost", "/root"))


def looks_local(text: str) -> bool:
    """True when ``text`` is (or contains) a local path, a file URL, or this machine's name or home folder."""
    stripped = text.strip()
    if _URL.match(stripped):
        return any(name in stripped for name in _machine_names())
    if stripped.startswith(("/", "~", "\\\\", "file:", "./", "../")) or _DRIVE.match(stripped):
        return True
    relative = ("/" in stripped or "\\" in stripped) and not any(c.isspace() for c in stripped)
    if relative and not _NUMERIC.match(stripped):
        return True  # a relative path such as data/busan/B04.tif
    return any(name in stripped for name in _machine_names())


def without_local_names(value: Any) -> Any:
    """Return a copy of a JSON-like value with each local path or machine name replaced by :data:`REMOVED`."""
    if isinstance(value, str):
        return REMOVED if looks_local(value) else value
    if isinstance(value, dict):
        return {k: without_local_names(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_local_names(v) for v in value]
    return value


def public_card(card: dict[str, Any]) -> dict[str, Any]:
    """The model card as outputs may carry it: training data as ids, checksums, sizes and licences only,
    and no local path or machine name anywhere."""
    if not card:
        return {}
    public = dict(card)
    training = card.get("training_data")
    if isinstance(training, (list, tuple)):
        public["training_data"] = [
            {k: item[k] for k in _TRAINING_KEYS if k in item} if isinstance(item, dict) else item
            for item in training
        ]
    return without_local_names(public)

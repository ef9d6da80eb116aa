"""Seal a map's payload with a passphrase so a lost or forwarded restricted map reveals nothing.

AES-256-GCM with a key from PBKDF2-HMAC-SHA256 (:data:`ITERATIONS` rounds, 16-byte random salt,
12-byte random nonce). The sealed form is a small JSON-ready dict that the page's WebCrypto code
(``maps/vendor/fieldtruth-map.js``) opens after the passphrase is typed; :func:`open_sealed` is the
Python mirror, used by the tests. Nothing but the ciphertext and the KDF parameters is stored.
"""

from __future__ import annotations

import base64
import logging
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from zxcvbn import zxcvbn

from fieldtruth.maps.errors import MapInputError, MapsError

log = logging.getLogger(__name__)

ITERATIONS = 310_000
"""PBKDF2-HMAC-SHA256 rounds (OWASP 2023 minimum for SHA-256)."""
MIN_PASSPHRASE_CHARS = 12
"""Fewest characters a passphrase has once surrounding whitespace is trimmed."""
MIN_STRENGTH = 3
"""Lowest zxcvbn score (0-4) accepted: 3 means at least about 10^8 guesses by zxcvbn's estimate, which
at 310,000 PBKDF2 rounds per guess is days of a GPU's time; 4 (10^10 and more) is better."""
SCHEME = "AES-256-GCM/PBKDF2-HMAC-SHA256"
ASSOCIATED_DATA = b"fieldtruth-map-v1"


class SealError(MapsError, ValueError):
    """A sealed payload could not be opened (wrong passphrase or altered bytes)."""


def _key(passphrase: str, salt: bytes, iterations: int) -> bytes:
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=iterations)
    return kdf.derive(passphrase.encode("utf-8"))


def check_passphrase(passphrase: str | None) -> str:
    """Return the passphrase, trimmed of surrounding whitespace, if it is strong enough; else raise.

    The rule: once trimmed, at least :data:`MIN_PASSPHRASE_CHARS` characters, and a zxcvbn strength
    score of at least :data:`MIN_STRENGTH` (zxcvbn estimates how many guesses a cracker needs, knowing
    common passwords, words, names, dates, keyboard patterns and substitutions). The map page trims
    what is typed the same way.

    Raises:
        MapInputError: If it is missing, too short once trimmed, or too easy to guess (never echoing it).
    """
    trimmed = (passphrase or "").strip()
    fix = ("Choose four or more unrelated words (e.g. 'lantern copper meadow ninety') and set "
           "FIELDTRUTH_PASSPHRASE or type it at the prompt (or use --no-encrypt for local use only).")
    if len(trimmed) < MIN_PASSPHRASE_CHARS:
        got = "none" if not trimmed else f"{len(trimmed)} characters once trimmed"
        raise MapInputError(
            f"expected a passphrase of at least {MIN_PASSPHRASE_CHARS} characters (surrounding spaces do not "
            f"count) for the encrypted restricted map; got {got}. {fix}"
        )
    strength = zxcvbn(trimmed[:100])
    if strength["score"] < MIN_STRENGTH:
        raise MapInputError(
            f"expected a passphrase with a strength score of at least {MIN_STRENGTH} of 4; this one scores "
            f"{strength['score']} (about 10^{strength['guesses_log10']:.0f} guesses). {fix}"
        )
    return trimmed


def seal(plaintext: bytes, passphrase: str, *, iterations: int = ITERATIONS) -> dict[str, Any]:
    """Encrypt ``plaintext`` under a key derived from ``passphrase``.

    Args:
        plaintext: The bytes to protect (the map's JSON payload).
        passphrase: At least :data:`MIN_PASSPHRASE_CHARS` characters.
        iterations: PBKDF2 rounds; at least :data:`ITERATIONS`.

    Returns:
        ``{"scheme", "iterations", "salt", "iv", "ad", "ciphertext"}`` (binary values base64).

    Raises:
        MapInputError: If the passphrase is too short or ``iterations`` below the minimum.
    """
    passphrase = check_passphrase(passphrase)
    if iterations < ITERATIONS:
        raise MapInputError(f"expected at least {ITERATIONS} PBKDF2 iterations; got {iterations!r}.")
    salt, iv = os.urandom(16), os.urandom(12)
    ciphertext = AESGCM(_key(passphrase, salt, iterations)).encrypt(iv, plaintext, ASSOCIATED_DATA)
    log.debug("sealed %d byte(s) with %s, %d iterations", len(plaintext), SCHEME, iterations)

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    return {
        "scheme": SCHEME,
        "iterations": iterations,
        "salt": b64(salt),
        "iv": b64(iv),
        "ad": b64(ASSOCIATED_DATA),
        "ciphertext": b64(ciphertext),
    }


def open_sealed(sealed: dict[str, Any], passphrase: str) -> bytes:
    """Decrypt what :func:`seal` returned.

    Raises:
        SealError: If the passphrase is wrong or the sealed data was altered.
    """
    try:
        key = _key(passphrase.strip(), base64.b64decode(sealed["salt"]), int(sealed["iterations"]))
        return AESGCM(key).decrypt(
            base64.b64decode(sealed["iv"]), base64.b64decode(sealed["ciphertext"]), ASSOCIATED_DATA
        )
    except (InvalidTag, KeyError, ValueError) as exc:
        raise SealError(
            "expected the passphrase the map was sealed with; decryption failed "
            "(wrong passphrase or altered file). Ask whoever made the map for the passphrase."
        ) from exc

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

from fieldtruth.maps.errors import MapInputError, MapsError

log = logging.getLogger(__name__)

ITERATIONS = 310_000
"""PBKDF2-HMAC-SHA256 rounds (OWASP 2023 minimum for SHA-256)."""
MIN_PASSPHRASE_CHARS = 8
SCHEME = "AES-256-GCM/PBKDF2-HMAC-SHA256"
ASSOCIATED_DATA = b"fieldtruth-map-v1"


class SealError(MapsError, ValueError):
    """A sealed payload could not be opened (wrong passphrase or altered bytes)."""


def _key(passphrase: str, salt: bytes, iterations: int) -> bytes:
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=iterations)
    return kdf.derive(passphrase.encode("utf-8"))


def check_passphrase(passphrase: str | None) -> str:
    """Return the passphrase if it is usable, else raise.

    Raises:
        MapInputError: If it is missing or shorter than :data:`MIN_PASSPHRASE_CHARS` characters.
    """
    if not passphrase or len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise MapInputError(
            f"expected a passphrase of at least {MIN_PASSPHRASE_CHARS} characters for the encrypted "
            f"restricted map; got {'none' if not passphrase else f'{len(passphrase)} characters'}. "
            "Set FIELDTRUTH_PASSPHRASE or type one at the prompt (or use --no-encrypt for local use)."
        )
    return passphrase


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
    check_passphrase(passphrase)
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
        key = _key(passphrase, base64.b64decode(sealed["salt"]), int(sealed["iterations"]))
        return AESGCM(key).decrypt(
            base64.b64decode(sealed["iv"]), base64.b64decode(sealed["ciphertext"]), ASSOCIATED_DATA
        )
    except (InvalidTag, KeyError, ValueError) as exc:
        raise SealError(
            "expected the passphrase the map was sealed with; decryption failed "
            "(wrong passphrase or altered file). Ask whoever made the map for the passphrase."
        ) from exc

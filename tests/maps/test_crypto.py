"""Tests of the map payload seal: AES-GCM with a PBKDF2 key, wrong passphrase refused."""

from __future__ import annotations

import base64

import pytest

from fieldtruth.maps.crypto import ITERATIONS, SealError, open_sealed, seal
from fieldtruth.maps.errors import MapInputError


def test_round_trip_and_fresh_salt() -> None:
    a, b = seal(b"payload", "correct horse"), seal(b"payload", "correct horse")
    assert open_sealed(a, "correct horse") == b"payload"
    assert a["salt"] != b["salt"] and a["iv"] != b["iv"] and a["ciphertext"] != b["ciphertext"]
    assert a["iterations"] == ITERATIONS >= 310_000
    assert b"payload" not in base64.b64decode(a["ciphertext"])


def test_wrong_passphrase_and_tampering() -> None:
    sealed = seal(b"secret sites", "correct horse")
    with pytest.raises(SealError, match="wrong passphrase"):
        open_sealed(sealed, "correct horsf")
    raw = bytearray(base64.b64decode(sealed["ciphertext"]))
    raw[0] ^= 1
    with pytest.raises(SealError):
        open_sealed({**sealed, "ciphertext": base64.b64encode(bytes(raw)).decode()}, "correct horse")


def test_weak_settings_refused() -> None:
    with pytest.raises(MapInputError):
        seal(b"x", "short")
    with pytest.raises(MapInputError):
        seal(b"x", "long enough", iterations=1000)

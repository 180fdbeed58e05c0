"""Derived ids: a rebuild gives every row the id it had, so their text never changes."""

from __future__ import annotations

import hashlib
import random

import pytest

from ingestion.ids import derived_id

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def digit_by_digit(prefix: str, *parts: object, length: int = 20) -> str:
    """The definition: base-36 digits of the digest's first 16 bytes, least significant first."""
    number = int.from_bytes(hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()[:16], "big")
    digits = []
    for _ in range(length):
        number, rest = divmod(number, 36)
        digits.append(ALPHABET[rest])
    return f"{prefix}_" + "".join(digits)


@pytest.mark.smoke
def test_derived_ids_keep_the_text_they_have_always_had():
    assert derived_id("cus", "biz_1", "ref:a") == "cus_2uh283vj1v8kjpoqh42o"
    assert derived_id("com", "biz_1", "pi_1", "agent", length=7) == "com_7zimrf3"
    assert derived_id("lpay", "biz_1", 42, length=24) == "lpay_wr1ogpyurnc1k6f811w27ug4"


@pytest.mark.parametrize("length", [1, 2, 7, 20, 24, 25, 40])
def test_derived_ids_follow_the_digit_by_digit_definition(length):
    rng = random.Random(length)
    for _ in range(2000):
        parts = [f"biz_{rng.getrandbits(40):x}", rng.randrange(10**9), "é" * rng.randrange(3), None]
        assert derived_id("x", *parts, length=length) == digit_by_digit("x", *parts, length=length)

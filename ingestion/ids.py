"""Public, prefixed identifiers (``biz_…``, ``evt_…``) and deterministic ones for projections."""

import hashlib
import secrets

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


_UNBIASED = 252  # the largest multiple of 36 that fits a byte: bytes at or above it are dropped


def new_id(prefix: str, length: int = 20) -> str:
    """Return a random public id such as ``biz_k3j…``; never used inside projectors.

    One ``token_bytes`` call per id (``secrets.choice`` per character cost a system call each,
    a measurable share of a webhook's CPU); bytes are mapped by rejection, so every character
    is uniform over the 36 symbols.
    """
    chars: list[str] = []
    while len(chars) < length:
        chars.extend(_ALPHABET[b % 36] for b in secrets.token_bytes(length + 8) if b < _UNBIASED)
    return f"{prefix}_" + "".join(chars[:length])


def derived_id(prefix: str, *parts: object, length: int = 20) -> str:
    """Return an id derived from ``parts``, so a rebuilt projection gives every row the same id."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    number = int.from_bytes(digest[:16], "big")
    chars = []
    for _ in range(length):
        number, rest = divmod(number, 36)
        chars.append(_ALPHABET[rest])
    return f"{prefix}_" + "".join(chars)

"""Public, prefixed identifiers (``biz_…``, ``evt_…``) and deterministic ones for projections."""

import hashlib
import secrets

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def new_id(prefix: str, length: int = 20) -> str:
    """Return a random public id such as ``biz_k3j…``; never used inside projectors."""
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def derived_id(prefix: str, *parts: object, length: int = 20) -> str:
    """Return an id derived from ``parts``, so a rebuilt projection gives every row the same id."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    number = int.from_bytes(digest[:16], "big")
    chars = []
    for _ in range(length):
        number, rest = divmod(number, 36)
        chars.append(_ALPHABET[rest])
    return f"{prefix}_" + "".join(chars)

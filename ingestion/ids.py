"""Public, prefixed identifiers (``biz_…``, ``evt_…``) and deterministic ones for projections."""

import hashlib
import secrets

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


_UNBIASED = 252  # the largest multiple of 36 that fits a byte: bytes at or above it are dropped
# Byte b -> the ASCII code of _ALPHABET[b % 36]; the bytes to drop (b >= _UNBIASED) are deleted.
_BYTE_TO_CHAR = bytes(ord(_ALPHABET[b % 36]) for b in range(256))
_DROPPED = bytes(range(_UNBIASED, 256))


def new_id(prefix: str, length: int = 20) -> str:
    """Return a random public id such as ``biz_k3j…``; never used inside projectors.

    One ``token_bytes`` call per id (``secrets.choice`` per character cost a system call each,
    a measurable share of a webhook's CPU); bytes are mapped by rejection, so every character
    is uniform over the 36 symbols. The mapping and the rejection are one ``bytes.translate``
    (a Python loop over the bytes was about 4 % of a webhook's CPU in process).
    """
    chars = secrets.token_bytes(length + 8).translate(_BYTE_TO_CHAR, _DROPPED)
    while len(chars) < length:
        chars += secrets.token_bytes(length + 8).translate(_BYTE_TO_CHAR, _DROPPED)
    return f"{prefix}_" + chars[:length].decode("ascii")


# Every pair of symbols, indexed by the value of two base-36 digits, least significant first.
_PAIRS = [low + high for high in _ALPHABET for low in _ALPHABET]


def derived_id(prefix: str, *parts: object, length: int = 20) -> str:
    """Return an id derived from ``parts``, so a rebuilt projection gives every row the same id.

    The id's characters are the base-36 digits of the digest's first 16 bytes, least significant
    first. Projections derive one for each customer, payment and commission they write (about two
    per event): taken two digits at a time from a table, that is 2.5x cheaper than digit by digit,
    and the ids are the same (``tests/ingestion/test_ids.py``).
    """
    text = "\x1f".join([part if type(part) is str else str(part) for part in parts])
    number = int.from_bytes(hashlib.sha256(text.encode()).digest()[:16], "big")
    pairs = []
    for _ in range((length + 1) // 2):
        number, rest = divmod(number, 1296)
        pairs.append(_PAIRS[rest])
    digits = "".join(pairs)
    return f"{prefix}_{digits[:length] if length % 2 else digits}"

"""Answers that only a higher app has, registered by it in ``AppConfig.ready()``.

``ingestion`` imports nothing of the other apps; where a receiver needs such an answer (is this
referral code active, for a CSV row?), the owning app registers a function here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_lookups: dict[str, Callable[..., Any]] = {}


def register_lookup(name: str, function: Callable[..., Any]) -> None:
    _lookups[name] = function


def lookup(name: str) -> Callable[..., Any]:
    try:
        return _lookups[name]
    except KeyError:
        raise LookupError(f"no lookup {name!r} registered; is the owning app installed?") from None

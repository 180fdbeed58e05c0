"""The registry of payment providers: ``/webhooks/<name>/<businessId>`` resolves here.

Adding a provider means one module that subclasses ``base.Provider`` and calls ``register`` at
its bottom, plus its name in ``BUILTIN`` below: the webhook URL, secrets (admin and
``set_provider_secret``), the API's provider field and the event store then know it.
``ingestion.checks`` verifies the registry at ``manage.py check`` time (and warns until the name
is also an ``Event.Source`` choice, which only the source filters need).
"""

from __future__ import annotations

from importlib import import_module

from .base import Provider

BUILTIN = ("stripe", "paystack", "flutterwave", "paddle", "lemonsqueezy")

_registry: dict[str, Provider] = {}


def register(provider: Provider) -> Provider:
    """Make a provider reachable by its name; a second registration of a name replaces the first."""
    if not provider.name:
        raise ValueError("a provider needs a name")
    _registry[provider.name] = provider
    return provider


def get_provider(name: str) -> Provider | None:
    """Return the registered provider called ``name``, or ``None``."""
    _load_builtin()
    return _registry.get(name)


def registered() -> dict[str, Provider]:
    _load_builtin()
    return dict(_registry)


_loaded = False


def _load_builtin() -> None:
    global _loaded
    if _loaded:
        return
    for module in BUILTIN:
        import_module(f"{__name__}.{module}")
    _loaded = True

"""System checks: a provider registry that cannot work is reported at ``manage.py check`` time.

Each registered provider must map every listed event type to a callable normaliser, implement
its own verifier, be listed in ``providers.BUILTIN`` (loaded at startup, offered by
``set_provider_secret`` and the API) and have a name that fits the columns it is stored in. A provider that is not
yet an ``Event.Source`` choice works, but its events cannot be filtered by source in the API and
the admin: a warning says so.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Tags, register
from django.core.checks import Warning as CheckWarning

from .models import Delivery, Event, ProviderSecret
from .providers import BUILTIN as PROVIDERS
from .providers import registered
from .providers.base import Provider


@register(Tags.compatibility)
def check_providers(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Report providers whose mapping, verifier or name would fail on a live webhook."""
    errors: list[CheckMessage] = []
    sources = {value for value, _ in Event.Source.choices}
    widths = {
        "Event.source": Event._meta.get_field("source").max_length,
        "Delivery.provider": Delivery._meta.get_field("provider").max_length,
        "ProviderSecret.provider": ProviderSecret._meta.get_field("provider").max_length,
    }
    for name, provider in registered().items():
        label = f"provider {name!r}"
        if type(provider).verify is Provider.verify:
            errors.append(Error(f"{label} has no verifier", hint="Implement verify() on its class.",
                                obj=type(provider), id="ingestion.E101"))
        if not provider.mapping:
            errors.append(Error(f"{label} maps no event type", obj=type(provider), id="ingestion.E102"))
        for event_type, mapper in provider.mapping.items():
            if not callable(mapper):
                errors.append(Error(f"{label} maps {event_type!r} to {mapper!r}, which is not a normaliser",
                                    hint="Map each provider event type to a function(Envelope) -> [Canonical].",
                                    obj=type(provider), id="ingestion.E103"))
        if name not in sources:
            errors.append(CheckWarning(
                f"{label} is not an Event.Source choice: its events are stored and projected, but "
                "/api/events?source= and the admin cannot filter by it",
                hint="Add it to Event.Source (and make the migration).", obj=type(provider), id="ingestion.W104"))
        if name not in PROVIDERS:
            errors.append(Error(f"{label} is not in ingestion.providers.BUILTIN: it is not loaded at startup, and "
                                "set_provider_secret and the API's provider field do not offer it",
                                hint="Add its name to BUILTIN next to the other providers.",
                                obj=type(provider), id="ingestion.E105"))
        for column, width in widths.items():
            if width is not None and len(name) > width:
                errors.append(Error(f"{label} is longer than {column} ({width} characters)",
                                    obj=type(provider), id="ingestion.E106"))
    return errors

"""The provider registry's system check."""

from __future__ import annotations

from ingestion.checks import check_providers
from ingestion.providers import BUILTIN, get_provider, register, registered
from ingestion.providers.base import Provider


def test_every_mapped_type_has_a_normaliser() -> None:
    """The shipped registry passes: five providers, every mapped type callable."""
    assert set(registered()) == set(BUILTIN)
    assert check_providers() == []


def test_check_reports_a_type_mapped_to_nothing() -> None:
    """A mapping entry that is not a function, a missing verifier and an unknown name are reported."""

    class Broken(Provider):
        name = "stripe"
        mapping = {"charge.succeeded": "charge_succeeded"}  # type: ignore[dict-item]

    original = get_provider("stripe")
    try:
        register(Broken())
        ids = {error.id for error in check_providers()}
    finally:
        register(original)
    assert {"ingestion.E101", "ingestion.E103"} <= ids


def test_check_reports_a_provider_outside_builtin_and_the_store_sources() -> None:
    """A provider registered outside BUILTIN is an error; one that is no Event.Source only a warning."""

    class Sixth(Provider):
        name = "mollie"
        mapping = {"payment.paid": lambda env: []}

        def verify(self, body, headers, secrets, now) -> None:  # type: ignore[no-untyped-def]
            return None

    from ingestion import providers

    register(Sixth())
    try:
        found = {(error.id, error.level) for error in check_providers()}
    finally:
        providers._registry.pop("mollie")
    assert found == {("ingestion.E105", 40), ("ingestion.W104", 30)}

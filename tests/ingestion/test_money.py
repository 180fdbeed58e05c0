"""ingestion.money's ISO 4217 exponent table, checked against the ``iso4217`` package so it cannot drift.

``EXPONENTS`` is meant to be ISO 4217's own list of minor units (PROVIDERS.md §7.4). The package
ships ISO's published table; every currency in it with a defined minor unit must have the same
exponent here. Deliberate deviations are never made in ``EXPONENTS`` itself: they live in
``PROVIDER_EXPONENTS`` (Stripe's zero-decimal MGA and UGX, two-decimal ISK), which applies only when
a provider is named. Then a few worked conversions for a zero-, two- and three-decimal currency.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from iso4217 import Currency

from ingestion.money import EXPONENTS, PROVIDER_EXPONENTS, MoneyError, exponent, from_minor, to_minor

# ISO 4217 currencies with a defined minor unit; "N.A." ones (gold XAU, test code XTS, SDR XDR …) are None.
ISO_EXPONENTS: dict[str, int] = {c.code: c.exponent for c in Currency if c.exponent is not None}
ISO_WITHOUT_MINOR_UNIT: list[str] = sorted(c.code for c in Currency if c.exponent is None)

# Stripe's documented deviations from ISO (PROVIDERS.md §7.3), and nothing else.
DOCUMENTED_OVERRIDES: dict[str, dict[str, int]] = {"stripe": {"MGA": 0, "UGX": 0, "ISK": 2}}


def test_every_iso_currency_with_a_minor_unit_has_isos_exponent() -> None:
    """A currency the package knows with a defined exponent is in the table with that exponent."""
    mismatched = {code: (EXPONENTS.get(code), iso) for code, iso in ISO_EXPONENTS.items()
                  if EXPONENTS.get(code) != iso}
    assert mismatched == {}, "ingestion.money (ours, ISO's) differs from the iso4217 package"


def test_the_table_has_no_currency_iso_does_not_list() -> None:
    """No made-up or withdrawn code is accepted: everything in the table is in ISO's current list."""
    assert sorted(set(EXPONENTS) - set(ISO_EXPONENTS)) == []


@pytest.mark.parametrize("code", ISO_WITHOUT_MINOR_UNIT)
def test_iso_codes_without_a_minor_unit_are_refused(code: str) -> None:
    """Metals, SDRs and the test code have no minor unit, so no amount in them can be exact."""
    with pytest.raises(MoneyError, match="unknown ISO 4217 currency"):
        exponent(code)


def test_provider_overrides_are_only_the_documented_ones() -> None:
    """Deviations from ISO are explicit per provider; naming the provider applies them, ISO's stays the default.

    (UGX is 0 in ISO too: Stripe's entry for it restates ISO rather than deviating.)
    """
    assert PROVIDER_EXPONENTS == DOCUMENTED_OVERRIDES
    for provider, overrides in PROVIDER_EXPONENTS.items():
        for code, places in overrides.items():
            assert exponent(code, provider) == places
            assert exponent(code) == ISO_EXPONENTS[code]


@pytest.mark.parametrize(("major", "currency", "minor"), [
    ("1500", "JPY", 1500),
    ("99.00", "USD", 9900),
    ("0.01", "USD", 1),
    ("12.345", "KWD", 12345),
    ("0.001", "KWD", 1),
])
def test_major_units_convert_to_exact_minor_units(major: str, currency: str, minor: int) -> None:
    """Each currency's exponent scales the amount: yen have no minor unit, dinars have three."""
    assert to_minor(major, currency) == minor
    assert to_minor(Decimal(major), currency) == minor


@pytest.mark.parametrize(("minor", "currency", "major"), [
    (1500, "JPY", "1500"),
    (9900, "USD", "99.00"),
    (5, "USD", "0.05"),
    (12345, "KWD", "12.345"),
    (-1980, "KWD", "-1.980"),
])
def test_minor_units_format_with_the_currencys_decimal_places(minor: int, currency: str, major: str) -> None:
    """from_minor shows exactly the currency's decimal places (reversals are negative)."""
    assert from_minor(minor, currency) == major


@pytest.mark.parametrize(("major", "currency"), [("1500.5", "JPY"), ("99.001", "USD"), ("1.2345", "KWD")])
def test_more_decimal_places_than_the_currency_has_are_refused(major: str, currency: str) -> None:
    """An amount finer than the minor unit cannot be stored exactly, so it is refused, never rounded."""
    with pytest.raises(MoneyError, match="decimal places"):
        to_minor(major, currency)


def test_a_provider_override_changes_the_conversion() -> None:
    """Stripe's ISK has two decimals: 100.00 ISK is 10000 to Stripe and 100 to ISO."""
    assert to_minor("100", "ISK") == 100
    assert to_minor("100", "ISK", provider="stripe") == 10000

"""Money as integer minor units plus an ISO 4217 code, never floats.

The exponent table is ISO 4217's (tests/ingestion/test_money.py checks it against the ``iso4217``
package so it cannot drift), with a per-provider override map for providers whose units deviate
from ISO.
"""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

_TWO = (
    "AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BMD BND BOB BOV BRL BSD BTN BWP BYN BZD CAD "
    "CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS "
    "GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD "
    "LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB "
    "PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP "
    "SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XAD XCD XCG YER ZAR ZMW ZWG"
)
_ZERO = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE = "BHD IQD JOD KWD LYD OMR TND"
_FOUR = "CLF UYW"

EXPONENTS: dict[str, int] = {
    **dict.fromkeys(_TWO.split(), 2),
    **dict.fromkeys(_ZERO.split(), 0),
    **dict.fromkeys(_THREE.split(), 3),
    **dict.fromkeys(_FOUR.split(), 4),
}

# Where a provider's "minor unit" is not ISO's: Stripe treats MGA and UGX as zero-decimal and
# represents ISK with two decimals for backwards compatibility (PROVIDERS.md §7.3).
PROVIDER_EXPONENTS: dict[str, dict[str, int]] = {
    "stripe": {"MGA": 0, "UGX": 0, "ISK": 2},
}


class MoneyError(ValueError):
    """An amount or currency that cannot be represented exactly."""


def normalise_currency(code: object) -> str:
    """Return the upper-case ISO code, or raise ``MoneyError`` for an unknown one."""
    if not isinstance(code, str) or code.strip().upper() not in EXPONENTS:
        raise MoneyError(f"unknown ISO 4217 currency: {code!r}")
    return code.strip().upper()


def exponent(currency: str, provider: str | None = None) -> int:
    """Return how many decimal places ``currency`` has (for ``provider`` if it deviates)."""
    currency = normalise_currency(currency)
    if provider and currency in PROVIDER_EXPONENTS.get(provider, {}):
        return PROVIDER_EXPONENTS[provider][currency]
    return EXPONENTS[currency]


def to_minor(amount: str | int | Decimal, currency: str, *, provider: str | None = None) -> int:
    """Convert a major-unit amount (``"99.00"``) to exact integer minor units.

    Raises ``MoneyError`` for more decimal places than the currency has, a negative amount,
    a symbol, or anything that is not a plain number. Floats are refused outright.
    """
    if isinstance(amount, (bool, float)):
        raise MoneyError("amount must be a decimal string, not a float")
    try:
        value = Decimal(str(amount).strip()) if not isinstance(amount, Decimal) else amount
    except InvalidOperation:
        raise MoneyError(f"not a number: {amount!r}") from None
    if not value.is_finite():
        raise MoneyError(f"not a number: {amount!r}")
    if value < 0:
        raise MoneyError("amount must not be negative")
    places = exponent(currency, provider)
    scaled = value.scaleb(places)
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{currency} has {places} decimal places; {amount!r} has more")
    return int(scaled)


def from_minor(amount: int, currency: str) -> str:
    """Format integer minor units as a major-unit decimal string (``9900`` USD → ``"99.00"``)."""
    places = exponent(currency)
    value = Decimal(amount).scaleb(-places)
    return f"{value:.{places}f}"


def round_half_up(value: Decimal) -> int:
    """Round a Decimal of minor units to an integer, halves away from zero."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))

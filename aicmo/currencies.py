"""ISO 4217 currency codes: the one list the API's schema and the services' checks read."""

from __future__ import annotations

from functools import cache

import pycountry


@cache
def currency_codes() -> tuple[str, ...]:
    """Every active ISO 4217 alphabetic code pycountry knows (``EUR``, ``USD``, …; about 180), sorted."""
    return tuple(sorted(currency.alpha_3 for currency in pycountry.currencies))


def currency_code_clean(value) -> str | None:
    """``value`` upper-cased and stripped when it is an ISO 4217 code (``"eur "`` → ``"EUR"``), else None."""
    code = str(value or "").strip().upper()
    return code if code in currency_codes() else None

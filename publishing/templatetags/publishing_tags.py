"""Template filters of the publishing pages."""

from __future__ import annotations

from django import template

from ..services.audience import left_out_words

register = template.Library()


@register.filter
def percent(value: float | None) -> str:
    """A ratio (0.1234) as "12.3%"; "—" for None (the rate is undefined: its base is 0)."""
    return "—" if value is None else f"{value * 100:.1f}%"


@register.filter
def left_out(reason: str) -> str:
    """A left-out reason in words (``publishing.services.audience.LEFT_OUT_WORDS``)."""
    return left_out_words(reason)

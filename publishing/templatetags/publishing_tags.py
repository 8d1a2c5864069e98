"""Template filters of the publishing pages."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def percent(value: float | None) -> str:
    """A ratio (0.1234) as "12.3%"; "—" for None (the rate is undefined: its base is 0)."""
    return "—" if value is None else f"{value * 100:.1f}%"

"""Sending speed limits per campaign and per sender (``max_per_second``, ``max_per_hour``), on top of the
gateway account's own rate limit (which the chain still applies).

Each limit is a token bucket in Redis (`gateway.ratelimit.bucket_take`, shared by every worker) with a
burst of one, so a limit of N per second / per hour spaces messages evenly — one every 1/N s or 3600/N s —
and never lets more than N + 1 go in any window of that length. A sender's buckets are shared by all of
its campaigns. Tokens are taken one bucket after another; when a later bucket refuses, the tokens already
taken are spent (a slightly slower send, never a faster one).
"""

from __future__ import annotations

from gateway.ratelimit import bucket_take

from ..models import Campaign, Sender

PERIODS = (("max_per_second", "s", 1.0), ("max_per_hour", "h", 3600.0))


def _buckets(campaign: Campaign, sender: Sender | None) -> list[tuple[list[str], float, str]]:
    out = []
    for owner, tag in ((campaign, "campaign"), (sender, "sender")):
        if owner is None:
            continue
        for field, suffix, seconds in PERIODS:
            limit = getattr(owner, field)
            if limit:
                base = f"aicmo:pub:{{{tag}:{owner.pk}}}:{suffix}"
                out.append(([base, f"{base}:hold"], limit / seconds, f"{tag} limit {limit}/{suffix}"))
    return out


def send_wait(campaign: Campaign, sender: Sender | None) -> tuple[float, str]:
    """Take one token of every limit that applies: ``(0.0, "")`` when the next message may go now, else
    ``(seconds to wait, which limit)``. No limit set: no Redis call at all."""
    for keys, rate, label in _buckets(campaign, sender):
        wait = bucket_take(keys, rate, 1)
        if wait:
            return wait, label
    return 0.0, ""

"""Vote rate limits: how many votes one annotator may cast per minute and per day.

Counted from the votes themselves (indexed by annotator and time), so the limits are exact,
hold across web processes and survive a cache flush, and a rejected vote costs nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from annotation.models import Annotator, Project, Vote

MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class LimitHit:
    message: str
    retry_after_seconds: int


def _window_hit(
    annotator: Annotator, now: datetime, window: timedelta, limit: int
) -> datetime | None:
    """When the oldest vote in the window leaves it, if the window is full; else None.

    One indexed query that returns at most one row: the limit-th newest vote in the window.
    """
    if limit <= 0:
        return None
    recent = Vote.objects.filter(annotator=annotator, created_at__gt=now - window)
    oldest_counted = recent.order_by("-created_at").values_list("created_at", flat=True)[
        limit - 1 : limit
    ]
    found = list(oldest_counted)
    return found[0] + window if found else None


def vote_limit_hit(*, annotator: Annotator, project: Project, now: datetime) -> LimitHit | None:
    """The limit the annotator's next vote would break, with when to try again; else None."""
    for window, limit, what in (
        (DAY, project.max_votes_per_day, "votes a day"),
        (MINUTE, project.max_votes_per_minute, "votes a minute"),
    ):
        frees_at = _window_hit(annotator, now, window, limit)
        if frees_at is not None:
            seconds = max(1, math.ceil((frees_at - now).total_seconds()))
            return LimitHit(
                message=f"Slow down: this arena takes at most {limit} {what} from one person. "
                f"Try again in {_duration(seconds)}.",
                retry_after_seconds=seconds,
            )
    return None


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{math.ceil(seconds / 60)} min"
    return f"{math.ceil(seconds / 3600)} h"

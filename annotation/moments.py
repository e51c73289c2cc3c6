"""Dates and date-times from query strings and files, as aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils.dateparse import parse_date, parse_datetime


def parse_moment(value: object, name: str) -> datetime | None:
    """An ISO date or date-time (naive means UTC) in UTC; None for nothing.

    Raises ValueError with a message naming ``name`` for anything else, including offsets or
    years that leave the range a database timestamp can hold.
    """
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        try:
            moment = parse_datetime(text)
            if moment is None and len(text) == 10:
                day = parse_date(text)
                moment = datetime(day.year, day.month, day.day) if day else None
        except ValueError:
            moment = None
        if moment is None:
            raise ValueError(f"{name} must be an ISO date or date-time, not {text[:40]!r}")
    try:
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise ValueError(f"{name} is out of range") from exc
    if not 1 <= moment.year <= 9998:
        raise ValueError(f"{name} is out of range")
    return moment

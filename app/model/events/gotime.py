"""Timestamps in Go's ``time.Time.String()`` form, as DVID writes them.

DVID stamps every Kafka message with ``time.Now().String()``; Go formats that
with the layout ``"2006-01-02 15:04:05.999999999 -0700 MST"``, in which the
fraction ``.999999999`` has its trailing zeros trimmed (and the dot dropped
when the fraction is zero).  segmend always writes UTC, so the zone is
``+0000 UTC``::

    2026-11-22 03:04:05.123456789 +0000 UTC
    2026-11-22 03:04:05.5 +0000 UTC
    2026-11-22 03:04:05 +0000 UTC

Go appends a monotonic-clock field (``m=+0.000123456``) to the string of a
time read from ``time.Now()``; it is not part of the wall time and segmend does
not write it, but :func:`parse_go_time` accepts it.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, timezone

__all__ = ["GoTime", "go_time_string", "now_go", "parse_go_time"]

_NS_PER_S = 1_000_000_000

_GO_TIME = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2}) (?P<time>\d{2}:\d{2}:\d{2})"
    r"(?:\.(?P<frac>\d{1,9}))?"
    r" (?P<sign>[+-])(?P<oh>\d{2})(?P<om>\d{2})"
    r" (?P<zone>[A-Za-z0-9+\-_/]+)"
    r"(?: m=[+-]\d+\.\d{9})?"
)


class GoTime(str):
    """A Go time string that :func:`now_go` or :func:`go_time_string` made: valid
    by construction, so the message builders take it without parsing it again."""

    __slots__ = ()


def _format(wall: datetime, nanosecond: int) -> GoTime:
    """Format a UTC wall time (its microseconds ignored) plus ``nanosecond``
    (an f-string: ``strftime`` costs tens of microseconds, every edit twice)."""
    text = (f"{wall.year:04d}-{wall.month:02d}-{wall.day:02d} "
            f"{wall.hour:02d}:{wall.minute:02d}:{wall.second:02d}")
    fraction = f"{nanosecond:09d}".rstrip("0")
    if fraction:
        text = f"{text}.{fraction}"
    return GoTime(f"{text} +0000 UTC")


def go_time_string(dt: datetime) -> GoTime:
    """Format ``dt`` as Go's ``time.Time.String()`` does, in UTC.

    Parameters
    ----------
    dt : datetime
        An aware datetime (any zone; it is converted to UTC).

    Returns
    -------
    str
        E.g. ``"2026-11-22 03:04:05.123456 +0000 UTC"``: nanoseconds with the
        trailing zeros trimmed, no fraction at all on a whole second.

    Raises
    ------
    ValueError
        If ``dt`` is naive (its zone would be a guess).
    """
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"go_time_string needs an aware datetime, got naive {dt.isoformat()}")
    utc = dt.astimezone(UTC)
    return _format(utc, utc.microsecond * 1000)


def now_go() -> GoTime:
    """The current time as Go's ``time.Time.String()`` in UTC, to the nanosecond."""
    ns = time.time_ns()
    seconds, nanosecond = divmod(ns, _NS_PER_S)
    return _format(datetime.fromtimestamp(seconds, UTC), nanosecond)


def parse_go_time(text: str) -> datetime:
    """Parse a Go ``time.Time.String()`` value.

    Parameters
    ----------
    text : str
        E.g. ``"2026-11-22 03:04:05.123456789 +0000 UTC"``; any numeric offset
        and zone abbreviation, and an optional trailing ``m=±s.nnnnnnnnn``
        monotonic reading, are accepted.

    Returns
    -------
    datetime
        An aware datetime in the string's offset; nanoseconds are truncated to
        microseconds.

    Raises
    ------
    ValueError
        If ``text`` is not in that form.
    """
    match = _GO_TIME.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"not a Go time.Time.String() timestamp: {text!r} "
            "(expected e.g. '2026-11-22 03:04:05.123456789 +0000 UTC')"
        )
    offset = timedelta(hours=int(match["oh"]), minutes=int(match["om"]))
    if match["sign"] == "-":
        offset = -offset
    try:
        wall = datetime.fromisoformat(f"{match['date']}T{match['time']}")  # (the shape: above)
    except ValueError as exc:
        raise ValueError(f"not a valid date/time in Go timestamp {text!r}: {exc}") from exc
    micro = int((match["frac"] or "0").ljust(9, "0")[:6])
    return wall.replace(microsecond=micro, tzinfo=timezone(offset))

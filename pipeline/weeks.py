"""ISO weeks in a time zone: what the weekly report covers (``earful report --week 2026-W47``).

A week starts at local midnight on Monday, so its UTC bounds move with the zone and its
daylight-saving changes; :func:`last_complete_week` is the default report's week.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from earful.pipeline.errors import EarfulError

_WEEK = re.compile(r"(\d{4})-W(\d{2})")


class BadWeek(EarfulError, ValueError):
    """A week that is not an ISO week such as ``2026-W47``."""


@dataclass(frozen=True)
class Week:
    """One ISO week in a time zone; ``start`` and ``end`` (exclusive) are UTC instants."""

    year: int
    number: int
    timezone: str = "UTC"

    @property
    def label(self) -> str:
        return f"{self.year}-W{self.number:02d}"

    @property
    def first_day(self) -> date:
        return date.fromisocalendar(self.year, self.number, 1)

    @property
    def last_day(self) -> date:
        return self.first_day + timedelta(days=6)

    @property
    def start(self) -> datetime:
        return _local_midnight_utc(self.first_day, self.timezone)

    @property
    def end(self) -> datetime:
        return _local_midnight_utc(self.first_day + timedelta(days=7), self.timezone)

    def shift(self, weeks: int) -> Week:
        iso = (self.first_day + timedelta(weeks=weeks)).isocalendar()
        return Week(iso.year, iso.week, self.timezone)

    def __str__(self) -> str:
        return self.label


def _local_midnight_utc(day: date, timezone: str) -> datetime:
    """The UTC instant of 00:00 on ``day`` in ``timezone``.

    Where a zone skips midnight (a DST change at 00:00), zoneinfo resolves the missing local
    time with the offset before the change, which is the instant the day starts.
    """
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def parse_week(text: str, timezone: str = "UTC") -> Week:
    """``2026-W47`` as a :class:`Week`; :class:`BadWeek` says what is wrong otherwise."""
    match = _WEEK.fullmatch(text.strip())
    if not match:
        raise BadWeek(f"{text!r} is not an ISO week; write it as YYYY-Www, e.g. 2026-W47")
    year, number = int(match.group(1)), int(match.group(2))
    try:
        date.fromisocalendar(year, number, 1)
    except ValueError:
        raise BadWeek(f"{year} has no week {number} (ISO years have 52 or 53 weeks)") from None
    return Week(year, number, timezone)


def last_complete_week(timezone: str, now: datetime | None = None) -> Week:
    """The last ISO week that has ended in ``timezone`` (the week before this one)."""
    now = now if now is not None else datetime.now(UTC)
    iso = now.astimezone(ZoneInfo(timezone)).date().isocalendar()
    return Week(iso.year, iso.week, timezone).shift(-1)

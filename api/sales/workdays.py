"""Working days in mainland China: the statutory holidays and the adjusted working weekends
(调休) as data, plus what a tenant declares itself (``sales_workday``: an extra day off, or a
day worked).

Years held as data: **2025** (State Council notice 国办发明电[2024] No. 12) and **2026**
(国办发明电[2025] No. 7). Outside them only weekends are days off (plus the tenant's own
declarations): ``known(year)`` says whether a year's official arrangement is held, and a
schedule reaching past it says so (``PaymentSchedule.calendarKnown``). Add a year here when the
State Council publishes it (usually in November for the next year).

A due date that falls on a day that is not a working day rolls forward to the next working
day (never back): money due on a Sunday is due on Monday, money due during the Spring
Festival is due on the first working day after it, which may be a make-up Saturday."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta


def _span(first: str, last: str) -> set[date]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return {start + timedelta(days=i) for i in range((end - start).days + 1)}


# Days off by law and by the year's arrangement (weekdays and weekends alike).
HOLIDAYS: dict[int, frozenset[date]] = {
    2025: frozenset(
        _span("2025-01-01", "2025-01-01")  # 元旦
        | _span("2025-01-28", "2025-02-04")  # 春节
        | _span("2025-04-04", "2025-04-06")  # 清明节
        | _span("2025-05-01", "2025-05-05")  # 劳动节
        | _span("2025-05-31", "2025-06-02")  # 端午节
        | _span("2025-10-01", "2025-10-08")  # 国庆节、中秋节
    ),
    2026: frozenset(
        _span("2026-01-01", "2026-01-03")  # 元旦
        | _span("2026-02-15", "2026-02-23")  # 春节
        | _span("2026-04-04", "2026-04-06")  # 清明节
        | _span("2026-05-01", "2026-05-05")  # 劳动节
        | _span("2026-06-19", "2026-06-21")  # 端午节
        | _span("2026-09-25", "2026-09-27")  # 中秋节
        | _span("2026-10-01", "2026-10-07")  # 国庆节
    ),
}

# Weekends worked instead (调休上班).
WORKED_WEEKENDS: dict[int, frozenset[date]] = {
    2025: frozenset(
        date.fromisoformat(d)
        for d in ("2025-01-26", "2025-02-08", "2025-04-27", "2025-09-28", "2025-10-11")
    ),
    2026: frozenset(
        date.fromisoformat(d)
        for d in (
            "2026-01-04",
            "2026-02-14",
            "2026-02-28",
            "2026-05-09",
            "2026-09-20",
            "2026-10-10",
        )
    ),
}

MAX_ROLL = 60  # no run of days off is that long; a calendar that says so is refused


def known(year: int) -> bool:
    """Whether the official arrangement of ``year`` is held here."""
    return year in HOLIDAYS


class Calendar:
    """The working days of one tenant: the official data, then the tenant's declarations
    (``overrides``: day -> working?), which win."""

    def __init__(self, overrides: Mapping[date, bool] | None = None) -> None:
        self.overrides = dict(overrides or {})

    def is_working(self, day: date) -> bool:
        if day in self.overrides:
            return self.overrides[day]
        if day in HOLIDAYS.get(day.year, ()):
            return False
        if day in WORKED_WEEKENDS.get(day.year, ()):
            return True
        return day.weekday() < 5

    def roll(self, day: date) -> date:
        """``day`` if it is a working day, else the next one."""
        for i in range(MAX_ROLL + 1):
            candidate = day + timedelta(days=i)
            if self.is_working(candidate):
                return candidate
        raise ValueError(f"no working day within {MAX_ROLL} days of {day}")

    def known(self, days: Iterable[date]) -> bool:
        """Whether every one of ``days`` falls in a year whose arrangement is held."""
        return all(known(d.year) for d in days)


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later; past the end of a shorter month, its last day (Jan 31
    + 1 month is Feb 28, or 29)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = (nxt - timedelta(days=1)).day
    return date(year, month, min(day.day, last))

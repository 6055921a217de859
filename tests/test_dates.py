from __future__ import annotations

import calendar
from datetime import date

import numpy as np

from parsers.dates import days_from_civil, days_in_month, ffill


def test_days_from_civil_matches_the_standard_library() -> None:
    days = np.arange(date(1999, 1, 1).toordinal(), date(2101, 1, 1).toordinal(), 37)
    dates = [date.fromordinal(int(d)) for d in days]
    y = np.array([d.year for d in dates])
    m = np.array([d.month for d in dates])
    dd = np.array([d.day for d in dates])
    expected = days - date(1970, 1, 1).toordinal()
    assert (days_from_civil(y, m, dd) == expected).all()


def test_days_in_month_knows_leap_years() -> None:
    years = np.repeat(np.arange(1896, 2105), 12)
    months = np.tile(np.arange(1, 13), 2105 - 1896)
    expected = [calendar.monthrange(int(y), int(m))[1] for y, m in zip(years, months, strict=True)]
    assert days_in_month(years, months).tolist() == expected


def test_ffill_carries_forward_with_an_initial_value() -> None:
    assert ffill(np.array([-1, 3, -1, -1, 5, -1]), 9).tolist() == [9, 3, 3, 3, 5, 5]
    assert ffill(np.array([], dtype=np.int64), 1).tolist() == []

"""Vectorised calendar arithmetic on numpy arrays (no datetime objects per row)."""

from __future__ import annotations

import numpy as np


def ffill(values: np.ndarray, initial: int) -> np.ndarray:
    """Carry the last non-negative value forward; `initial` before the first one."""
    idx = np.where(values >= 0, np.arange(len(values)), -1)
    idx = np.maximum.accumulate(idx) if len(idx) else idx
    return np.where(idx >= 0, values[np.maximum(idx, 0)], initial)


def days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm), vectorised."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    doy = (153 * (m + np.where(m > 2, -3, 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return np.asarray(era * 146097 + doe - 719468, dtype=np.int64)


def days_in_month(y: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Length of each month (Gregorian leap years)."""
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    lengths = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    return np.asarray(lengths[np.clip(m, 0, 12)] + ((m == 2) & leap), dtype=np.int64)

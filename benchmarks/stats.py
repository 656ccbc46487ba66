"""Percentiles and the small number formats the table uses."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def ratio(numerator: float, denominator: float) -> float:
    if denominator <= 0 or math.isnan(denominator) or math.isnan(numerator):
        return math.nan
    return numerator / denominator


def ms(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.1f}" if abs(value) < 100 else f"{value:.0f}"


def ms2(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def times(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}x"


def verdict(value: float, goal: float) -> str:
    if math.isnan(value):
        return "n/a"
    return "met" if value <= goal else "NOT MET"

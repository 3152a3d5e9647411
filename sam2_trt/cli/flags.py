"""Parsing comma-separated prompt flags (`--point`, `--box`) with messages that name the flag and the value:
numbers must be finite, indices and labels whole, labels 0 or 1."""

from __future__ import annotations

import math


def numbers(text: str, flag: str, form: str, n_min: int, n_max: int) -> list:
    """"1,2.5,3" -> [1.0, 2.5, 3.0]: n_min..n_max finite numbers, or ValueError naming the flag."""
    parts = str(text).split(",")
    if not n_min <= len(parts) <= n_max:
        raise ValueError(f"{flag} {text!r}: expected {form} ({n_min}{'' if n_min == n_max else f' or {n_max}'} "
                         f"comma-separated numbers)")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"{flag} {text!r}: expected {form}, and {text!r} has a part that is not a number") from None
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{flag} {text!r}: every value must be a finite number (no inf or nan)")
    return values


def whole(value: float, flag: str, text: str, what: str) -> int:
    if value != int(value):
        raise ValueError(f"{flag} {text!r}: {what} must be a whole number, got {value:g}")
    return int(value)


def label(value: float, flag: str, text: str) -> int:
    """A click label: 1 (foreground) or 0 (background), nothing in between."""
    if value not in (0.0, 1.0):
        raise ValueError(f"{flag} {text!r}: the label must be 1 (foreground) or 0 (background), got {value:g}")
    return int(value)

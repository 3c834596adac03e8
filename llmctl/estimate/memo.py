"""Figures computed from immutable objects, remembered while those very objects live.

The estimators ask for the same figures of one architecture, quantization, constants table or device
thousands of times in a plan. A table keys each figure by the ids of (at most) two objects and the
plain values it also depends on. An id may be reused once its object is gone, so each entry keeps its
objects and answers only when they are the ones asked about. A full table is emptied: fitting tries
many override dicts, and nothing here is worth more memory than it saves.
"""

from __future__ import annotations

from typing import Any


class ObjectMemo:
    __slots__ = ("_table", "_limit")

    def __init__(self, limit: int = 4096) -> None:
        self._table: dict[tuple, tuple] = {}
        self._limit = limit

    def get(self, a: Any, b: Any = None, rest: tuple = ()) -> Any:
        """The figure remembered for objects `a` and `b` (None: no second object) and `rest`; None if none."""
        hit = self._table.get((id(a), id(b), rest))
        return hit[2] if hit is not None and hit[0] is a and hit[1] is b else None

    def put(self, a: Any, b: Any, rest: tuple, value: Any) -> Any:
        """Remember `value` (never None) for `a`, `b` and `rest`; returns it."""
        if len(self._table) > self._limit:
            self._table.clear()
        self._table[(id(a), id(b), rest)] = (a, b, value)
        return value

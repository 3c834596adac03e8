"""Coordinate descent the benchmarks re-fit constants with: each free value in turn is scaled up or
down by its step (within its bounds); a move that lowers the loss is kept, a value that found none
has its step shrunk, until no step is left worth taking."""

from __future__ import annotations

from typing import Callable, Sequence


def coordinate_descent(x: Sequence[float], loss: Callable[[list[float]], float],
                       bounds: Sequence[tuple[float, float]], *, step: float, rounds: int, tol: float,
                       zero_step: Callable[[float, float], float], free: Sequence[bool] | None = None) -> list[float]:
    """`zero_step(lo, hi)`: how far a value at 0 moves per unit of its step (a zero cannot be scaled);
    `free`: which values may move (the others keep their start). Returns the best values found."""
    x = list(x)
    steps = [step] * len(x)
    best = loss(x)
    for _ in range(rounds):
        improved = False
        for i in range(len(x)):
            if free is not None and not free[i]:
                continue
            lo, hi = bounds[i]
            for sign in (1, -1):
                trial = list(x)
                trial[i] = min(hi, max(lo, x[i] * (1 + sign * steps[i]) if x[i] > 0
                                   else sign * steps[i] * zero_step(lo, hi)))
                value = loss(trial)
                if value < best - 1e-9:
                    x, best, improved = trial, value, True
                    break
            else:
                steps[i] *= 0.6
        if not improved and max(steps) < tol:
            break
    return x

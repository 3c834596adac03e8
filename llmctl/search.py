"""Finding the largest load that still fits: bisection on a monotone ratio."""

from __future__ import annotations

from typing import Callable


def largest_within(ratio: Callable[[int], float], upper: int, *, linear: bool = False) -> int:
    """Largest n in [1, upper] with ratio(n) ≤ 1, for a ratio that never falls as n grows; 0 if none.

    Used for "how many users stay within the SLA" (bisection: the ratio jumps where requests start
    to queue) and "how many slots fit in memory" (`linear=True`: memory grows by the same KV and
    graph bytes per slot, so the line through the two ends lands on the answer, checked at n and n+1).
    """
    upper = max(1, upper)
    r_lo = ratio(1)
    if r_lo > 1:
        return 0
    r_hi = ratio(upper)
    if r_hi <= 1:
        return upper
    lo, hi = 1, upper  # ratio(lo) ≤ 1 < ratio(hi)
    if linear and r_hi > r_lo:
        guess = 1 + int((1 - r_lo) * (upper - 1) / (r_hi - r_lo))
        if lo <= guess < hi:
            if ratio(guess) <= 1:
                lo = guess
                if ratio(guess + 1) > 1:
                    return guess
            else:
                hi = guess
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ratio(mid) <= 1:
            lo = mid
        else:
            hi = mid
    return lo

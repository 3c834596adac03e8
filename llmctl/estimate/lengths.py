"""Request lengths as a distribution, not one mean.

Chat traffic (ShareGPT, the conversations vLLM's benchmarks replay) has a few long prompts and answers
among many short ones. With lengths drawn from an exponential distribution of the stated mean — the
maximum-entropy choice when only the mean is known, coefficient of variation 1 — the mix is cut into
equal-probability buckets, each represented by its conditional mean:

- the decode batch holds long answers longer, so the context a decode step reads is the time-weighted
  mean, prompt + E[O²] / (2·E[O]) = prompt + mean answer (not prompt + half of it);
- TTFT is spread by the prompt lengths: the median request has a short prompt, the 95th percentile a
  long one.
"""

from __future__ import annotations

import math
from functools import lru_cache

SHAPES = ("fixed", "sharegpt")


@lru_cache(maxsize=8)
def _exponential_buckets(n: int) -> tuple[tuple[float, float], ...]:
    """(conditional mean, probability) of n equal-probability buckets of Exp(1)."""
    out = []
    for i in range(n):
        lo_q, hi_q = i / n, (i + 1) / n
        a = -math.log(1 - lo_q)
        b = -math.log(1 - hi_q) if hi_q < 1 else math.inf
        # ∫ x e^-x dx from a to b = (a + 1) e^-a − (b + 1) e^-b
        mass = (a + 1) * math.exp(-a) - ((b + 1) * math.exp(-b) if b != math.inf else 0.0)
        out.append((mass / (hi_q - lo_q), hi_q - lo_q))
    return tuple(out)


def mix(shape: str, mean: float, buckets: int = 4) -> list[tuple[int, float]]:
    """(length, weight) pairs with the given mean; "fixed" is the mean alone."""
    if shape not in SHAPES:
        raise ValueError(f"lengths must be one of {', '.join(SHAPES)}, not {shape!r}")
    if shape == "fixed" or mean <= 1:
        return [(max(1, round(mean)), 1.0)]
    return [(max(1, round(mean * m)), w) for m, w in _exponential_buckets(buckets)]


def second_moment_ratio(shape: str, mean: float) -> float:
    """E[X²] / E[X] of the shape: the length weighted by how long it stays (2 × mean for exponential)."""
    pairs = mix(shape, mean)
    first = sum(v * w for v, w in pairs)
    return sum(v * v * w for v, w in pairs) / first if first else 0.0


def weighted_quantile(pairs: list[tuple[float, float]], q: float) -> float:
    """Quantile of values given as (value, weight) pairs (0 when the weights sum to nothing)."""
    pairs = sorted(pairs)
    total = sum(w for _, w in pairs)
    if total <= 0:
        return 0.0
    acc = 0.0
    for v, w in pairs:
        acc += w
        if acc >= q * total - 1e-9:
            return v
    return pairs[-1][0]

"""A slow, obviously-correct pure-Python reference of the ZipCal greedy selector."""

from __future__ import annotations

import math
from typing import Dict, Hashable, List, Optional, Sequence, Set, Tuple

WEIGHT_SCALE = 2**24


def round_half_away(x: float) -> int:
    """Round a non-negative float to the nearest integer, halves away from zero."""
    assert x >= 0
    return int(math.floor(x + 0.5))


def zipf_weights(counts: Dict[Hashable, int]) -> Dict[Hashable, int]:
    """w(t) = round(ln(1 + N / f(t)) * 2**24), N = total count; 0 when f(t) = 0."""
    total = sum(counts.values())
    out: Dict[Hashable, int] = {}
    for t, f in counts.items():
        out[t] = 0 if f == 0 else round_half_away(math.log(1.0 + total / f) * WEIGHT_SCALE)
    return out


def uniform_weights(counts: Dict[Hashable, int]) -> Dict[Hashable, int]:
    return {t: 1 for t in counts}


def greedy(
    sets: Sequence[Set[Hashable]],
    weights: Dict[Hashable, int],
    n: int,
    costs: Optional[Sequence[int]] = None,
    budget: Optional[int] = None,
) -> Tuple[List[int], List[int]]:
    """Greedy maximum weighted coverage: n times, take the not-yet-chosen candidate with
    the largest marginal gain (sum of weights of its uncovered types); ties go to the
    larger set, then to the lower index. With ``costs`` and ``budget``, stop instead as
    soon as the chosen candidates' costs add up to the budget (or none is left).
    Returns (indices in pick order, gains)."""
    if budget is None and n > len(sets):
        raise ValueError(f"n = {n} > {len(sets)} candidates")
    covered: Set[Hashable] = set()
    chosen: List[int] = []
    gains: List[int] = []
    taken = [False] * len(sets)
    while len(chosen) < (n if budget is None else len(sets)):
        if budget is not None and costs is not None and sum(costs[i] for i in chosen) >= budget:
            break
        best: Optional[Tuple[int, int, int]] = None  # (gain, size, -index)
        for i, s in enumerate(sets):
            if taken[i]:
                continue
            g = sum(weights[t] for t in s if t not in covered)
            key = (g, len(s), -i)
            if best is None or key > best:
                best = key
        assert best is not None
        i = -best[2]
        taken[i] = True
        chosen.append(i)
        gains.append(best[0])
        covered |= sets[i]
    return chosen, gains


def coverage(sets: Sequence[Set[Hashable]], indices: Sequence[int]) -> int:
    covered: Set[Hashable] = set()
    for i in indices:
        covered |= sets[i]
    return len(covered)


def fill_rows(
    pieces: Sequence[Sequence[Hashable]], rows: int, capacity: int, separator: Sequence[Hashable] = ()
) -> List[List[Hashable]]:
    """The documented ``fill`` packing, written plainly: pieces of ``capacity`` tokens
    are rows of their own (pick order); the shorter ones, each followed by
    ``separator``, are joined and cut into rows of ``capacity``; the first ``rows``
    rows are kept."""
    full = [list(p) for p in pieces if len(p) == capacity]
    stream: List[Hashable] = []
    for p in pieces:
        if 0 < len(p) < capacity:
            stream.extend(p)
            stream.extend(separator)
    packed = [stream[k : k + capacity] for k in range(0, len(stream), capacity)]
    return (full + packed)[:rows]

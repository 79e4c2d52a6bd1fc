"""Packing selected candidates into calibration rows, and the token budget behind it.

Every strategy is handed the same budget: ``n`` rows of ``seq_len`` tokens. A row
holds the special tokens the tokenizer adds to one sequence (for example a BOS
token) and ``capacity = seq_len - specials`` content tokens. A candidate feeds
its own tokens and nothing else (its window, or its document's first
``capacity`` tokens), so its type set is exactly the types it feeds.

The ``fill`` layout (the default): a candidate as long as a row's capacity
takes a row of its own; shorter ones are joined in pick order, each followed by
a separator (the tokenizer's EOS token, when it has one), and the joined stream
is cut into rows. A strategy keeps picking until the picks' *costs* (tokens,
plus the separator of a short candidate) reach ``n * capacity``, so every row
is full of real tokens whenever the pool holds enough of them; only the last
pick may be cut short. The same layout is applied to type sequences (for the
coverage statistics) and to token ids (for the tensors), so the statistics
describe the rows the compressor receives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .errors import InvalidArgumentError

# One piece of a row: (candidate position in pick order, start, end) into that
# candidate's fed tokens, or (-1, 0, 1) for a separator token.
Segment = Tuple[int, int, int]
SEPARATOR: Segment = (-1, 0, 1)


POLICIES = ("fill", "truncate", "random-window", "concat-chunk")


@dataclass(frozen=True)
class Budget:
    """The token budget of a selection: ``rows`` rows of ``capacity`` content tokens.

    ``costs[i]`` is what candidate ``i`` of the pool spends of it: its fed tokens,
    plus ``separator`` when it is shorter than a row (it then shares a row)."""

    rows: int
    capacity: int
    separator: int
    costs: np.ndarray

    @property
    def tokens(self) -> int:
        return self.rows * self.capacity

    def take(self, order: "Sequence[int] | np.ndarray") -> np.ndarray:
        """The shortest prefix of ``order`` whose costs reach the budget (all of
        ``order`` when they never do)."""
        picks = np.asarray(order, dtype=np.int64)
        if len(picks) == 0:
            return picks
        spent = np.cumsum(self.costs[picks])
        k = int(np.searchsorted(spent, self.tokens, side="left"))
        return picks[: k + 1]


def candidate_costs(tokens: np.ndarray, capacity: int, separator: int) -> np.ndarray:
    """Budget cost of candidates with ``tokens`` fed tokens each (at most ``capacity``)."""
    fed = np.minimum(np.asarray(tokens, dtype=np.int64), capacity)
    return (fed + np.where(fed < capacity, separator, 0)).astype(np.uint64)


def layout(lengths: Sequence[int], rows: Optional[int], capacity: int, separator: int) -> List[List[Segment]]:
    """The ``fill`` layout of pieces of ``lengths`` tokens into at most ``rows`` rows
    of ``capacity`` tokens (all rows needed when ``rows`` is None). Full pieces take a
    row each, in pick order; shorter ones are joined (each followed by ``separator``
    separator tokens) and cut into the rows after them. Tokens past the last row are
    dropped; the last row may be short."""
    if capacity <= 0:
        raise InvalidArgumentError(f"rows must hold at least one content token, got capacity {capacity}")
    full: List[List[Segment]] = []
    stream: List[Segment] = []  # the short pieces, each followed by its separators
    for i, n in enumerate(lengths):
        n = min(int(n), capacity)
        if n == capacity:
            full.append([(i, 0, n)])
        elif n > 0:
            stream.append((i, 0, n))
            stream.extend([SEPARATOR] * separator)
    packed: List[List[Segment]] = []
    current: List[Segment] = []
    room = capacity
    for i, a, b in stream:
        while a < b:
            take = min(room, b - a)
            current.append((i, a, a + take))
            a += take
            room -= take
            if room == 0:
                packed.append(current)
                current, room = [], capacity
    if current:
        packed.append(current)
    out = full + packed
    return out if rows is None else out[:rows]


def fill(
    pieces: Sequence[np.ndarray], segments: List[List[Segment]], separator_value: int, dtype=np.int64
) -> List[np.ndarray]:
    """The rows of a :func:`layout` built from ``pieces`` (token ids or type ids)."""
    sep = np.array([separator_value], dtype=dtype)
    rows = []
    for row in segments:
        parts = [sep if c < 0 else np.asarray(pieces[c][a:b], dtype=dtype) for c, a, b in row]
        rows.append(np.concatenate(parts) if parts else np.zeros(0, dtype=dtype))
    return rows


def fed_tokens(segments: List[List[Segment]]) -> int:
    """Content tokens of a layout, separators included."""
    return sum(b - a for row in segments for _, a, b in row)

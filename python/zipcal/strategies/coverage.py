"""Built-in strategies that need no model: greedy lexical coverage (``zipcal``,
``zipcal-zipf``), random sampling, and the paper code's ``words_dataset``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, List, Optional

import numpy as np

from ..errors import InvalidArgumentError, NotEnoughCandidatesError
from .registry import Picked, register

if TYPE_CHECKING:  # pragma: no cover
    from ..packing import Budget
    from ..pool import Pool


def _greedy(pool: "Pool", n: int, weighting: str, budget: Optional["Budget"] = None) -> Picked:
    t0 = time.perf_counter()
    exclude = pool.excluded_types
    if budget is None:
        order, gains, covered, evaluations = pool.corpus.greedy(n, weighting, exclude=exclude)
    else:
        order, gains, covered, evaluations = pool.corpus.greedy(
            len(pool), weighting, costs=budget.costs, budget=budget.tokens, exclude=exclude
        )
    return Picked(
        candidates=order.astype(np.int64),
        gains=gains,
        info={
            "weighting": weighting,
            "gain_evaluations": int(evaluations),
            "select_seconds": time.perf_counter() - t0,
            "tokens_through_model": 0,
        },
    )


def zipcal(
    pool: "Pool", n: int, *, seed: int = 0, weighting: str = "uniform", budget: Optional["Budget"] = None
) -> Picked:
    """Greedy lexical coverage (exact lazy greedy) until the picks fill ``budget``
    (``n`` picks without one). Deterministic: ``seed`` is unused."""
    return _greedy(pool, n, weighting, budget)


def zipcal_zipf(pool: "Pool", n: int, *, seed: int = 0, budget: Optional["Budget"] = None) -> Picked:
    """Greedy coverage with Zipf weights w(t) = ln(1 + N / f(t))."""
    return _greedy(pool, n, "zipf", budget)


def random_strategy(pool: "Pool", n: int, *, seed: int = 0, draw: int = 0, budget: Optional["Budget"] = None) -> Picked:
    """Uniform random candidates, in the order of a seeded permutation, until they fill
    ``budget`` (``n`` of them without one). Draws ``0, 1, ...`` with the same seed take
    consecutive stretches of the same permutation, so they never overlap."""
    if isinstance(draw, bool) or not isinstance(draw, (int, np.integer)) or draw < 0:
        raise InvalidArgumentError(f"draw must be an integer >= 0, got {draw!r}")
    t0 = time.perf_counter()
    perm = np.random.default_rng(seed).permutation(len(pool)).astype(np.int64)
    start = 0
    for _ in range(int(draw) + 1):
        rest = perm[start:]
        chosen = budget.take(rest) if budget is not None else rest[:n]
        start += len(chosen)
    full = len(chosen) == n if budget is None else int(budget.costs[chosen].sum()) >= budget.tokens
    if draw > 0 and not full:
        raise NotEnoughCandidatesError(
            f"random draw {draw} of n = {n} rows runs out of candidates: the pool's {len(pool)} "
            f"candidates fill {draw} draws at most"
        )
    return Picked(
        candidates=chosen,
        info={"draw": draw, "select_seconds": time.perf_counter() - t0, "tokens_through_model": 0},
    )


def zipcal_words_dataset(pool: "Pool", n: int, *, seed: int = 0, words_per_sample: Optional[int] = None) -> Picked:
    """The reference code's ``words_dataset`` (what its plots call ZipCal): the words
    of *every* candidate of the pool (each one what a row feeds: a window, or a
    document's first ``seq_len`` tokens), lower-cased and split on whitespace, are
    shuffled into one bag (unigram frequencies preserved) and dealt, cycling through
    the bag, into ``n`` pseudo-texts of ``words_per_sample`` words (default: the row
    length in tokens, as the reference uses its sequence length). There is no greedy
    step. A row is the first ``seq_len`` tokens of a pseudo-text: a word is at least
    one token, so rows are full."""
    t0 = time.perf_counter()
    size = pool.seq_len if words_per_sample is None else words_per_sample
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
        raise InvalidArgumentError(f"words_per_sample must be a positive integer, got {words_per_sample!r}")
    words: List[str] = []
    for text in pool.candidate_texts(range(len(pool))):
        words.extend(text.lower().split())
    if not words:
        raise NotEnoughCandidatesError("the pool has no words to shuffle")
    order = np.random.default_rng(seed).permutation(len(words))
    take = np.arange(n * int(size)) % len(words)
    texts = [" ".join(words[order[j]] for j in take[i * size : (i + 1) * size]) for i in range(n)]
    return Picked(
        candidates=np.full(n, -1, dtype=np.int64),
        texts=texts,
        info={
            "select_seconds": time.perf_counter() - t0,
            "tokens_through_model": 0,
            "synthetic": True,
            "bag_words": len(words),
        },
    )


register("zipcal", zipcal, description="greedy lexical coverage of token types (canonical ZipCal)")
register("zipcal-zipf", zipcal_zipf, description="ZipCal with Zipf weights ln(1 + N/f(t)) favouring rare types")
register(
    "zipcal-words-dataset",
    zipcal_words_dataset,
    description="the reference's words_dataset: every pool word, shuffled into n bag-of-words texts",
)
register("random", random_strategy, description="seeded uniform sample; draw=k gives disjoint samples")

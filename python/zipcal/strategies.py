"""Selection strategies, by name.

A strategy is a function ``fn(pool, n, *, seed, **options) -> Picked``. The built-in
ones need no model; model-based strategies register themselves the same way, so
callers only ever pass a name: ``zipcal.select(src, strategy="...")``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

import numpy as np

from .errors import InvalidArgumentError, NotEnoughCandidatesError

if TYPE_CHECKING:  # pragma: no cover
    from .selection import Pool


@dataclass
class Picked:
    """What a strategy returns: candidate indices in pick order (-1: a synthetic
    sample with no source document), optional per-pick
    gains, optional replacement texts (for synthetic data), and facts about the run."""

    candidates: np.ndarray
    gains: Optional[np.ndarray] = None
    texts: Optional[List[str]] = None
    info: Dict[str, Any] = field(default_factory=dict)


StrategyFn = Callable[..., Picked]


@dataclass
class StrategySpec:
    name: str
    fn: StrategyFn
    description: str
    needs_model: bool = False


_REGISTRY: Dict[str, StrategySpec] = {}


def register(name: str, fn: StrategyFn, *, description: str = "", needs_model: bool = False) -> None:
    """Make ``fn`` available as ``strategy=name``."""
    _REGISTRY[name] = StrategySpec(name, fn, description, needs_model)


def available() -> Dict[str, str]:
    """Registered strategy names and their one-line descriptions."""
    return {k: v.description for k, v in sorted(_REGISTRY.items())}


def get(name: str) -> StrategySpec:
    if name not in _REGISTRY:
        raise InvalidArgumentError(
            f"unknown strategy {name!r}; available: {', '.join(sorted(_REGISTRY))}"
        )
    return _REGISTRY[name]


def _greedy(pool: "Pool", n: int, weighting: str) -> Picked:
    t0 = time.perf_counter()
    order, gains, covered, evaluations = pool.corpus.greedy(n, weighting)
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


def zipcal(pool: "Pool", n: int, *, seed: int = 0, weighting: str = "uniform") -> Picked:
    """Greedy lexical coverage (exact lazy greedy). Deterministic: ``seed`` is unused."""
    return _greedy(pool, n, weighting)


def zipcal_zipf(pool: "Pool", n: int, *, seed: int = 0) -> Picked:
    """Greedy coverage with Zipf weights w(t) = ln(1 + N / f(t))."""
    return _greedy(pool, n, "zipf")


def random_strategy(pool: "Pool", n: int, *, seed: int = 0, draw: int = 0) -> Picked:
    """Uniform random candidates. Draws ``0, 1, ...`` with the same seed never overlap."""
    if draw < 0:
        raise InvalidArgumentError(f"draw must be >= 0, got {draw}")
    t0 = time.perf_counter()
    need = (draw + 1) * n
    if need > len(pool):
        raise NotEnoughCandidatesError(
            f"random draw {draw} of n = {n} needs {need} candidates, the pool has {len(pool)}"
        )
    perm = np.random.default_rng(seed).permutation(len(pool))
    return Picked(
        candidates=perm[draw * n : need].astype(np.int64),
        info={"draw": draw, "select_seconds": time.perf_counter() - t0, "tokens_through_model": 0},
    )


def zipcal_words_dataset(pool: "Pool", n: int, *, seed: int = 0, weighting: str = "uniform") -> Picked:
    """The reference code's ``words_dataset`` variant: the words of the ZipCal
    selection pooled into one bag (unigram frequencies preserved), shuffled with
    ``seed`` and dealt back into ``n`` texts of (nearly) equal word counts."""
    from . import _core

    picked = _greedy(pool, n, weighting)
    t0 = time.perf_counter()
    words: List[str] = []
    for c in picked.candidates:
        words.extend(_core.segment_words(pool.candidate_text(int(c))))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(words))
    shuffled = [words[i] for i in order]
    bounds = np.linspace(0, len(shuffled), n + 1).astype(int)
    picked.texts = [" ".join(shuffled[bounds[i] : bounds[i + 1]]) for i in range(n)]
    picked.info["select_seconds"] += time.perf_counter() - t0
    picked.info["synthetic"] = True
    return picked


register("zipcal", zipcal, description="greedy lexical coverage of token types (canonical ZipCal)")
register("zipcal-zipf", zipcal_zipf, description="ZipCal with Zipf weights ln(1 + N/f(t)) favouring rare types")
register(
    "zipcal-words-dataset",
    zipcal_words_dataset,
    description="words of the ZipCal selection, shuffled into n bag-of-words texts",
)
register("random", random_strategy, description="seeded uniform sample; draw=k gives disjoint samples")

from . import baselines as _baselines  # noqa: E402,F401  registers model-based strategies

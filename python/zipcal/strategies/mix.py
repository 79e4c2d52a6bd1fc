"""``zipcal-mix``: lexical coverage that keeps the pool's mix of kinds of text.

Plain coverage (``zipcal``) picks whatever adds the most new types, and a pool's
text kinds do not add types at the same rate: encyclopaedic prose is dense in rare
names and numbers, source code repeats a small vocabulary. On a pool that mixes
WikiText, Wikipedia, news, Shakespeare, Python code and Python docs, 103 of
ZipCal's 130 picks came from the Wikipedia sample and 6 from code, where random
sampling took 38 and 47: the compressor's statistics then describe the pool's
prose, and held-out code perplexity is what suffers.

``zipcal-mix`` splits the budget the way the pool splits its tokens and spends each
share on coverage:

1. **Kinds of text, without labels.** Each candidate's type set becomes a short
   vector: the sum of fixed random directions of its types, weighted by inverse
   document frequency (a random projection of its tf-idf vector), normalised.
   Spherical k-means (k-means++ start, seeded) groups the vectors into ``strata``
   clusters; code, verse and encyclopaedia prose fall apart on their vocabulary.
2. **Shares by token mass.** Each cluster's share of the budget is its share of
   the pool's tokens (the share random sampling gives it on average, without
   random sampling's spread).
3. **Coverage within the shares.** One lazy greedy over all clusters with one
   covered set: the next pick comes from the cluster furthest behind its share,
   and it is that cluster's candidate adding the most types not yet covered by
   any pick. Types shared across kinds count once.

It needs no model: its cost is one pass over the candidates' type sets, the
clustering (a few matrix products of candidates x 64), and a lazy greedy.
"""

from __future__ import annotations

import heapq
import time
from typing import TYPE_CHECKING, List, Optional, Tuple

import numpy as np

from ..errors import InvalidArgumentError
from .registry import Picked, register

if TYPE_CHECKING:  # pragma: no cover
    from ..packing import Budget
    from ..pool import Pool

PROFILE_TYPES = 1024
KMEANS_ITERATIONS = 30
# Candidates the centroids are fitted on; all are then assigned, a block at a time.
KMEANS_FIT = 50_000


class Profiles:
    """Each candidate as a unit vector over the pool's ``PROFILE_TYPES`` most frequent
    types: presence, weighted by inverse document frequency, centred on the mean of
    the candidates the clusters are fitted on. Frequent types (function words,
    punctuation, keywords, indentation) say what kind of text a candidate is,
    whatever its topic."""

    def __init__(self, offsets: np.ndarray, types: np.ndarray, num_types: int, top: int = PROFILE_TYPES) -> None:
        self.offsets, self.types = offsets, types
        n = len(offsets) - 1
        df = np.bincount(types, minlength=num_types)
        keep = np.argsort(-df, kind="stable")[: min(top, num_types)]
        self.column = np.full(num_types, -1, dtype=np.int64)
        self.column[keep] = np.arange(len(keep))
        self.weight = (np.log((n + 1.0) / (df[keep] + 1.0)) + 1.0).astype(np.float32)
        self.mean = np.zeros(len(keep), dtype=np.float32)

    def presence(self, candidates: np.ndarray) -> np.ndarray:
        candidates = np.asarray(candidates, dtype=np.int64)
        starts = self.offsets[candidates].astype(np.int64)
        lens = (self.offsets[candidates + 1] - self.offsets[candidates]).astype(np.int64)
        owner = np.repeat(np.arange(len(candidates)), lens)
        at = np.repeat(starts - np.concatenate(([0], np.cumsum(lens)[:-1])), lens) + np.arange(int(lens.sum()))
        cols = self.column[self.types[at]]
        x = np.zeros((len(candidates), len(self.weight)), dtype=np.float32)
        hit = cols >= 0
        x[owner[hit], cols[hit]] = 1.0
        return x * self.weight

    def rows(self, candidates: np.ndarray) -> np.ndarray:
        x = self.presence(candidates) - self.mean
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def cluster(profiles: Profiles, k: int, seed: int, block: int = KMEANS_FIT) -> np.ndarray:
    """Cluster labels of all candidates: spherical k-means (k-means++ start, seeded)
    fitted on up to ``KMEANS_FIT`` of them, then every candidate assigned to its
    nearest centre, a block at a time."""
    n = len(profiles.offsets) - 1
    k = max(1, min(k, n))
    rng = np.random.default_rng(seed)
    sample = np.arange(n) if n <= KMEANS_FIT else np.sort(rng.choice(n, KMEANS_FIT, replace=False))
    profiles.mean = profiles.presence(sample).mean(axis=0)
    centres = spherical_kmeans(profiles.rows(sample), k, rng)
    labels = np.empty(n, dtype=np.int64)
    for lo in range(0, n, block):
        idx = np.arange(lo, min(n, lo + block))
        labels[idx] = np.argmax(profiles.rows(idx) @ centres.T, axis=1)
    return labels


def spherical_kmeans(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Centres (unit vectors) of spherical k-means on unit vectors ``x``."""
    centres = [x[int(rng.integers(len(x)))]]
    dist = 1.0 - x @ centres[0]
    for _ in range(1, k):
        p = np.maximum(dist, 0.0).astype(np.float64) ** 2
        total = float(p.sum())
        j = int(rng.choice(len(x), p=p / total)) if total > 0 else int(rng.integers(len(x)))
        centres.append(x[j])
        dist = np.minimum(dist, 1.0 - x @ x[j])
    c = np.stack(centres)
    for _ in range(KMEANS_ITERATIONS):
        labels = np.argmax(x @ c.T, axis=1)
        new = np.eye(len(c), dtype=x.dtype)[labels].T @ x  # sum of each cluster's members
        norms = np.linalg.norm(new, axis=1, keepdims=True)
        new = np.where(norms > 0, new / np.maximum(norms, 1e-12), c)
        if np.allclose(new, c):
            break
        c = new
    return c


def mix_greedy(
    offsets: np.ndarray,
    types: np.ndarray,
    num_types: int,
    labels: np.ndarray,
    costs: np.ndarray,
    tokens: int,
    excluded: Optional[np.ndarray] = None,
) -> Tuple[np.ndarray, np.ndarray, int]:
    """Picks (in order), their gains, and gain evaluations of coverage within token
    shares: each cluster's share of ``tokens`` is its share of ``costs``; the next pick
    comes from the cluster furthest behind its share (ties: the lower cluster), and is
    its candidate adding the most uncovered types (ties: the lower index). Types in
    ``excluded`` count as covered from the start (they add nothing)."""
    k = int(labels.max()) + 1 if len(labels) else 0
    mass = np.bincount(labels, weights=costs.astype(np.float64), minlength=k)
    share = tokens * mass / max(float(mass.sum()), 1.0)
    used = np.zeros(k, dtype=np.float64)
    sizes = np.diff(offsets).astype(np.int64)
    heaps: List[List[Tuple[int, int]]] = [[] for _ in range(k)]
    for i in np.argsort(labels, kind="stable"):
        heaps[int(labels[i])].append((-int(sizes[i]), int(i)))
    for h in heaps:
        heapq.heapify(h)
    covered = np.zeros(num_types, dtype=bool)
    if excluded is not None:
        covered[excluded[excluded < num_types]] = True
    picks: List[int] = []
    gains: List[int] = []
    spent = 0
    evaluations = 0
    while spent < tokens:
        live = [s for s in range(k) if heaps[s] and share[s] > 0]
        if not live:
            break
        s = min(live, key=lambda s: (used[s] / share[s], s))
        h = heaps[s]
        while True:  # lazy greedy: heap keys are upper bounds of the gains
            _, i = heapq.heappop(h)
            gain = int(np.count_nonzero(~covered[types[offsets[i] : offsets[i + 1]]]))
            evaluations += 1
            if not h or (-gain, i) <= h[0]:
                break
            heapq.heappush(h, (-gain, i))
        covered[types[offsets[i] : offsets[i + 1]]] = True
        picks.append(i)
        gains.append(gain)
        used[s] += float(costs[i])
        spent += int(costs[i])
    return np.asarray(picks, dtype=np.int64), np.asarray(gains, dtype=np.uint64), evaluations


def zipcal_mix(pool: "Pool", n: int, *, seed: int = 0, strata: int = 8, budget: Optional["Budget"] = None) -> "Picked":
    """Coverage within token shares of the pool's kinds of text (see the module)."""
    if isinstance(strata, bool) or not isinstance(strata, (int, np.integer)) or strata < 1:
        raise InvalidArgumentError(f"strata must be a positive integer, got {strata!r}")
    t0 = time.perf_counter()
    offsets, types = pool.corpus.type_sets()
    num_types = int(pool.corpus.num_types)
    labels = cluster(Profiles(offsets, types, num_types), int(strata), seed)
    if budget is not None:
        costs, tokens = np.asarray(budget.costs, dtype=np.int64), budget.tokens
    else:
        costs, tokens = np.ones(len(offsets) - 1, dtype=np.int64), n
    picks, gains, evaluations = mix_greedy(offsets, types, num_types, labels, costs, tokens, pool.excluded_types)
    sizes = np.bincount(labels, minlength=int(labels.max()) + 1)
    return Picked(
        candidates=picks,
        gains=gains,
        info={
            "strata": int(len(sizes)),
            "stratum_candidates": sizes.tolist(),
            "stratum_picks": np.bincount(labels[picks], minlength=len(sizes)).tolist(),
            "gain_evaluations": int(evaluations),
            "select_seconds": time.perf_counter() - t0,
            "tokens_through_model": 0,
        },
    )


register(
    "zipcal-mix",
    zipcal_mix,
    description="coverage within each kind of text's share of the pool's tokens (label-free clusters)",
)

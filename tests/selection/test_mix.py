"""``zipcal-mix``: coverage within each kind of text's share of the pool's tokens."""

from __future__ import annotations

import inspect
import json
import os

import numpy as np
import pytest

import zipcal
from zipcal.errors import InvalidArgumentError
from zipcal.strategies.mix import Profiles, cluster, mix_greedy


def _random_sets(rng, n, universe):
    sets = [np.unique(rng.integers(0, universe, size=int(rng.integers(1, 30)))).astype(np.uint32) for _ in range(n)]
    offsets = np.concatenate(([0], np.cumsum([len(s) for s in sets]))).astype(np.uint64)
    return offsets, np.concatenate(sets), sets


def _naive(sets, costs, tokens):
    """Plain greedy coverage: the largest gain, ties to the lower index, until the
    costs reach ``tokens``."""
    covered, picks, spent = set(), [], 0
    left = set(range(len(sets)))
    while spent < tokens and left:
        best = max(sorted(left), key=lambda i: len(set(sets[i].tolist()) - covered))
        picks.append(best)
        left.remove(best)
        covered |= set(sets[best].tolist())
        spent += int(costs[best])
    return picks


@pytest.mark.parametrize("seed", range(5))
def test_one_cluster_is_plain_greedy_coverage(seed):
    rng = np.random.default_rng(seed)
    offsets, types, sets = _random_sets(rng, 120, 200)
    costs = rng.integers(5, 40, size=120)
    picks, gains, _ = mix_greedy(offsets, types, 200, np.zeros(120, dtype=np.int64), costs, 600)
    assert picks.tolist() == _naive(sets, costs, 600)
    covered = set()
    for i, g in zip(picks, gains):  # gains are the new types each pick adds
        assert int(g) == len(set(sets[i].tolist()) - covered)
        covered |= set(sets[i].tolist())


def test_each_cluster_spends_its_share():
    rng = np.random.default_rng(3)
    offsets, types, _ = _random_sets(rng, 300, 400)
    labels = np.repeat(np.arange(3), 100)
    costs = np.full(300, 10)
    costs[:100] = 30  # cluster 0 holds 60% of the tokens
    picks, _, _ = mix_greedy(offsets, types, 400, labels, costs, 1000)
    spent = np.bincount(labels[picks], weights=costs[picks], minlength=3)
    share = 1000 * np.bincount(labels, weights=costs) / costs.sum()
    assert np.all(np.abs(spent - share) <= 30), (spent, share)
    assert spent.sum() >= 1000


def _two_kinds(wikitext_lines):
    """Prose (WikiText lines) and Python source (functions of the standard library)."""
    prose = [l.strip() for l in wikitext_lines[:600] if len(l.split()) > 20]
    code = []
    for mod in (json, os, inspect):
        src = inspect.getsource(mod)
        code.extend(p for p in src.split("\n\n\n") if len(p.split()) > 20)
    return prose, code


def test_keeps_the_pools_mix_where_plain_coverage_does_not(wikitext_lines):
    prose, code = _two_kinds(wikitext_lines)
    texts = prose + code
    kind = np.array([0] * len(prose) + [1] * len(code))
    pool = zipcal.load_pool(texts, seq_len=64, min_tokens=8, unit="doc")
    rows = np.asarray(pool.rows)
    tokens = np.bincount(kind[rows], weights=np.asarray(pool.budget(1).costs, dtype=float), minlength=2)
    code_share = tokens[1] / tokens.sum()

    def share(sel):
        picked = kind[np.asarray(sel.indices)]
        return np.bincount(picked, weights=np.asarray(sel.token_counts, dtype=float), minlength=2)[1] / sum(
            sel.token_counts
        )

    mix = zipcal.select(pool, 24, strategy="zipcal-mix", seed=0)
    plain = zipcal.select(pool, 24, strategy="zipcal", seed=0)
    assert abs(share(mix) - code_share) < 0.1, (share(mix), code_share)
    assert abs(share(plain) - code_share) > abs(share(mix) - code_share)
    # still coverage: more types than a random sample of the same tokens
    rnd = zipcal.select(pool, 24, strategy="random", seed=0)
    assert mix.stats["tokens_fed"] == rnd.stats["tokens_fed"]
    assert mix.stats["types_covered"] > rnd.stats["types_covered"]


def test_clusters_separate_prose_from_code(wikitext_lines):
    prose, code = _two_kinds(wikitext_lines)
    pool = zipcal.load_pool(prose + code, seq_len=64, min_tokens=8, unit="doc")
    kind = np.array([0] * len(prose) + [1] * len(code))[np.asarray(pool.rows)]
    offsets, types = pool.corpus.type_sets()
    labels = cluster(Profiles(offsets, types, int(pool.corpus.num_types)), 8, seed=0)
    # each cluster holds (almost) one kind: purity over all candidates
    majority = sum(max(np.sum((labels == c) & (kind == 0)), np.sum((labels == c) & (kind == 1))) for c in range(8))
    assert majority / len(labels) > 0.95


def test_deterministic_and_validated(wikitext_lines):
    texts = [l for l in wikitext_lines[:400] if len(l.split()) > 8]
    pool = zipcal.load_pool(texts, seq_len=32, min_tokens=4)
    a = zipcal.select(pool, 16, strategy="zipcal-mix", seed=7)
    b = zipcal.select(pool, 16, strategy="zipcal-mix", seed=7)
    assert list(a.indices) == list(b.indices) and list(a.windows) == list(b.windows)
    assert a.info["strata"] == 8 and sum(a.info["stratum_picks"]) == a.stats["candidates"]
    with pytest.raises(InvalidArgumentError, match="strata"):
        zipcal.select(pool, 16, strategy="zipcal-mix", strata=0)


def test_type_sets_match_candidate_types(wikitext_lines):
    pool = zipcal.load_pool([l for l in wikitext_lines[:200] if l.strip()], seq_len=32, min_tokens=4)
    offsets, types = pool.corpus.type_sets()
    assert len(offsets) == len(pool) + 1 and offsets[-1] == len(types)
    for i in (0, len(pool) // 2, len(pool) - 1):
        assert types[offsets[i] : offsets[i + 1]].tolist() == pool.corpus.candidate_types(i).tolist()

"""The Rust greedy selector against the pure-Python oracle, on random small corpora."""

from __future__ import annotations

from collections import Counter
from typing import Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import zipcal
from zipcal import _core

import oracle

# A small vocabulary so that type sets overlap a lot; case variants and non-ASCII
# words exercise the lowercasing (Rust's full Unicode mapping vs Python's str.lower).
VOCAB = [
    "a", "A", "b", "B", "ab", "Ab", "abc", "cab", "the", "The", "THE", "fox", "dog",
    "über", "Über", "ÜBER", "straße", "STRASSE", "σοφός", "ΣΟΦΟΣ", "İstanbul", "ǅemal",
    "日本", "東京", "москва", "Москва", "3.14", "42", "don't", "e-mail", "naïve", "café",
]
SEPARATORS = [" ", " ", " ", "  ", "\n", "\t", ", ", ". ", " - ", "\u00a0", "\u3000", "\x1c"]
NON_WORDS = ["", "   ", " \n\t ", "!!!", "-- ?", "\u3000", "\x1f", " . , ; "]


@st.composite
def documents(draw) -> Optional[str]:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return None
    if kind == 1:
        return draw(st.sampled_from(NON_WORDS))
    words = draw(st.lists(st.sampled_from(VOCAB), min_size=1, max_size=8))
    out = [draw(st.sampled_from(["", " ", "\n"]))]
    for w in words:
        out.append(w)
        out.append(draw(st.sampled_from(SEPARATORS)))
    return "".join(out)


corpora = st.lists(documents(), min_size=0, max_size=30)


def oracle_corpus(texts: Sequence[Optional[str]], min_tokens: int = 1) -> Tuple[List[Set[str]], List[int], Counter]:
    """Candidate type sets, their source rows and the pool's type counts, computed in
    Python from the texts (words = UAX #29 segments, lowercased with str.lower)."""
    sets: List[Set[str]] = []
    rows: List[int] = []
    counts: Counter = Counter()
    for r, t in enumerate(texts):
        if t is None or t.strip() == "":
            continue
        words = [w.lower() for w in _core.segment_words(t)]
        if len(words) < min_tokens:
            continue
        sets.append(set(words))
        rows.append(r)
        counts.update(words)
    return sets, rows, counts


def oracle_select(texts, n: int, weighting: str) -> Tuple[List[int], List[int], List[Set[str]], List[int]]:
    sets, rows, counts = oracle_corpus(texts)
    weights = oracle.zipf_weights(counts) if weighting == "zipf" else oracle.uniform_weights(counts)
    order, gains = oracle.greedy(sets, weights, n)
    return [rows[i] for i in order], gains, sets, rows


SETTINGS = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@SETTINGS
@given(texts=corpora, data=st.data(), strategy=st.sampled_from(["zipcal", "zipcal-zipf"]))
def test_select_matches_oracle(texts, data, strategy):
    weighting = "zipf" if strategy == "zipcal-zipf" else "uniform"
    sets, rows, counts = oracle_corpus(texts)
    if not sets:
        with pytest.raises(zipcal.NotEnoughCandidatesError):
            zipcal.select(texts, 1, tokenizer="words", min_tokens=1, strategy=strategy)
        return
    n = data.draw(st.integers(1, len(sets)), label="n")
    want_rows, want_gains, _, _ = oracle_select(texts, n, weighting)
    sel = zipcal.select(texts, n, tokenizer="words", min_tokens=1, strategy=strategy, seed=data.draw(st.integers(0, 5)))
    assert sel.indices.tolist() == want_rows
    assert [int(g) for g in sel.gains] == want_gains
    assert all(a >= b for a, b in zip(sel.gains[:-1], sel.gains[1:])), sel.gains
    # the pool itself agrees with the Python view of the corpus
    pool = sel.pool
    assert len(pool) == len(sets)
    assert pool.rows.tolist() == rows
    names = pool.corpus.type_names()
    assert {names[t]: int(c) for t, c in enumerate(pool.counts) if c} == dict(counts)
    for i, s in enumerate(sets):
        assert {names[t] for t in pool.corpus.candidate_types(i)} == s
    # selected texts are the source rows
    assert sel.texts == [texts[r] for r in want_rows]
    # coverage stat matches the oracle
    assert sel.stats["types_covered"] == oracle.coverage(sets, [rows.index(r) for r in want_rows])
    assert sel.stats["types_available"] == len(counts)


@SETTINGS
@given(texts=corpora, data=st.data())
def test_zipf_weights_match_python(texts, data):
    sets, rows, counts = oracle_corpus(texts)
    assume(sets)
    pool = zipcal.load_pool(texts, tokenizer="words", min_tokens=1)
    names = pool.corpus.type_names()
    want = oracle.zipf_weights(counts)
    got = pool.corpus.weights("zipf")
    assert {names[t]: int(w) for t, w in enumerate(got)} == want
    assert pool.corpus.weights("uniform").tolist() == [1] * len(names)


@SETTINGS
@given(texts=corpora, data=st.data(), weighting=st.sampled_from(["uniform", "zipf"]))
def test_lazy_greedy_equals_naive_greedy(texts, data, weighting):
    pool = zipcal.load_pool(texts, tokenizer="words", min_tokens=1)
    assume(len(pool) > 0)
    n = data.draw(st.integers(1, len(pool)), label="n")
    lazy = pool.corpus.greedy(n, weighting, naive=False)
    naive = pool.corpus.greedy(n, weighting, naive=True)
    assert lazy[0].tolist() == naive[0].tolist()
    assert lazy[1].tolist() == naive[1].tolist()
    assert lazy[2] == naive[2]
    covered, _ = pool.corpus.coverage([int(i) for i in lazy[0]], "uniform")
    assert covered == lazy[2]


@SETTINGS
@given(texts=corpora, data=st.data())
def test_same_seed_same_selection(texts, data):
    pool = zipcal.load_pool(texts, tokenizer="words", min_tokens=1)
    assume(len(pool) > 0)
    n = data.draw(st.integers(1, len(pool)), label="n")
    seed = data.draw(st.integers(0, 2**31), label="seed")
    for strategy in ("zipcal", "zipcal-zipf", "random"):
        a = zipcal.select(texts, n, tokenizer="words", min_tokens=1, strategy=strategy, seed=seed)
        b = zipcal.select(pool, n, strategy=strategy, seed=seed)
        assert a.indices.tolist() == b.indices.tolist()
        assert a.texts == b.texts


@SETTINGS
@given(texts=corpora, data=st.data())
def test_random_draws_are_disjoint_and_valid(texts, data):
    pool = zipcal.load_pool(texts, tokenizer="words", min_tokens=1)
    assume(len(pool) >= 2)
    n = data.draw(st.integers(1, len(pool) // 2), label="n")
    seed = data.draw(st.integers(0, 1000), label="seed")
    d0 = zipcal.select(pool, n, strategy="random", seed=seed, draw=0)
    d0b = zipcal.select(pool, n, strategy="random", seed=seed)
    d1 = zipcal.select(pool, n, strategy="random", seed=seed, draw=1)
    assert d0.indices.tolist() == d0b.indices.tolist()
    assert len(set(d0.candidates.tolist())) == n
    assert len(set(d1.candidates.tolist())) == n
    assert not set(d0.candidates.tolist()) & set(d1.candidates.tolist())
    valid_rows = set(pool.rows.tolist())
    assert set(d0.indices.tolist()) <= valid_rows and set(d1.indices.tolist()) <= valid_rows


def test_greedy_tie_breaks_by_size_then_index():
    # gains tie at 0 after the first picks: larger sets first, then the lower index
    texts = ["q", "q r", "q r", "r", "s t u", "s"]
    sel = zipcal.select(texts, 6, tokenizer="words", min_tokens=1)
    sets, rows, counts = oracle_corpus(texts)
    order, gains = oracle.greedy(sets, oracle.uniform_weights(counts), 6)
    assert sel.indices.tolist() == [rows[i] for i in order] == [4, 1, 2, 0, 3, 5]
    assert sel.gains.tolist() == gains == [3, 2, 0, 0, 0, 0]


def test_oracle_on_real_text(wikitext_lines):
    texts = wikitext_lines[:600]
    n = 25
    for strategy, weighting in (("zipcal", "uniform"), ("zipcal-zipf", "zipf")):
        want_rows, want_gains, _, _ = oracle_select(texts, n, weighting)
        sel = zipcal.select(texts, n, tokenizer="words", min_tokens=1, strategy=strategy)
        assert sel.indices.tolist() == want_rows
        assert sel.gains.tolist() == want_gains
        evaluations = sel.stats["gain_evaluations"]
        # lazy evaluation must beat recomputing every gain every round
        assert evaluations < n * len(sel.pool)


def test_weighting_option_of_zipcal_strategy():
    texts = ["a b c d", "e", "e f", "a b", "g h a"] * 3 + ["rare words only here"]
    z1 = zipcal.select(texts, 4, tokenizer="words", min_tokens=1, strategy="zipcal", weighting="zipf")
    z2 = zipcal.select(texts, 4, tokenizer="words", min_tokens=1, strategy="zipcal-zipf")
    assert z1.indices.tolist() == z2.indices.tolist()
    want_rows, want_gains, _, _ = oracle_select(texts, 4, "zipf")
    assert z1.indices.tolist() == want_rows
    with pytest.raises(zipcal.InvalidArgumentError):
        zipcal.select(texts, 4, tokenizer="words", min_tokens=1, strategy="zipcal", weighting="bogus")

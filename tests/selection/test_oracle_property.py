"""The Rust greedy selector against the pure-Python oracle, on random small corpora."""

from __future__ import annotations

from collections import Counter
from typing import List, NamedTuple, Optional, Sequence, Set, Tuple

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from support import oracle

import zipcal
from zipcal import _core

# A small vocabulary so that type sets overlap a lot; case variants and non-ASCII
# words exercise the lowercasing (Rust's full Unicode mapping vs Python's str.lower).
VOCAB = [
    "a",
    "A",
    "b",
    "B",
    "ab",
    "Ab",
    "abc",
    "cab",
    "the",
    "The",
    "THE",
    "fox",
    "dog",
    "über",
    "Über",
    "ÜBER",
    "straße",
    "STRASSE",
    "σοφός",
    "ΣΟΦΟΣ",
    "İstanbul",
    "ǅemal",
    "日本",
    "東京",
    "москва",
    "Москва",
    "3.14",
    "42",
    "don't",
    "e-mail",
    "naïve",
    "café",
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


class OracleCorpus(NamedTuple):
    """Candidates computed in Python from the texts (words = UAX #29 segments,
    lowercased with str.lower): each one's words, source row and window index."""

    pieces: List[List[str]]
    rows: List[int]
    windows: List[int]
    counts: Counter

    @property
    def sets(self) -> List[Set[str]]:
        return [set(p) for p in self.pieces]


def oracle_corpus(
    texts: Sequence[Optional[str]], min_tokens: int = 1, seq_len: int = 2048, unit: str = "window"
) -> OracleCorpus:
    """Candidates as a calibration row of ``seq_len`` words feeds them: every window of
    ``seq_len`` words of a document (``unit="window"``), or its first ``seq_len``
    words (``unit="doc"``). The pool's type counts are those of the candidates' words."""
    out = OracleCorpus([], [], [], Counter())
    for r, t in enumerate(texts):
        if t is None or t.strip() == "":
            continue
        words = [w.lower() for w in _core.segment_words(t)]
        starts = range(0, len(words), seq_len) if unit == "window" else [0]
        for k, a in enumerate(starts):
            piece = words[a : a + seq_len]
            if len(piece) < max(min_tokens, 1):
                continue
            out.pieces.append(piece)
            out.rows.append(r)
            out.windows.append(k)
            out.counts.update(piece)
    return out


def oracle_select(
    texts, n: int, weighting: str, seq_len: int = 2048, unit: str = "window"
) -> Tuple[List[int], List[int], OracleCorpus]:
    """Greedy until the picks fill ``n`` rows of ``seq_len`` words (words mode has no
    separator token). Returns the picked candidates, their gains and the corpus."""
    oc = oracle_corpus(texts, seq_len=seq_len, unit=unit)
    weights = oracle.zipf_weights(oc.counts) if weighting == "zipf" else oracle.uniform_weights(oc.counts)
    costs = [len(p) for p in oc.pieces]
    order, gains = oracle.greedy(oc.sets, weights, n, costs=costs, budget=n * seq_len)
    return order, gains, oc


SETTINGS = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(
    texts=corpora,
    data=st.data(),
    strategy=st.sampled_from(["zipcal", "zipcal-zipf"]),
    seq_len=st.integers(1, 12),
    unit=st.sampled_from(["window", "doc"]),
)
def test_select_matches_oracle(texts, data, strategy, seq_len, unit):
    weighting = "zipf" if strategy == "zipcal-zipf" else "uniform"
    oc = oracle_corpus(texts, seq_len=seq_len, unit=unit)
    kw = dict(tokenizer="words", min_tokens=1, strategy=strategy, seq_len=seq_len, unit=unit)
    if not oc.pieces:
        with pytest.raises(zipcal.NotEnoughCandidatesError):
            zipcal.select(texts, 1, **kw)
        return
    n = data.draw(st.integers(1, len(oc.pieces)), label="n")
    order, want_gains, _ = oracle_select(texts, n, weighting, seq_len, unit)
    sel = zipcal.select(texts, n, seed=data.draw(st.integers(0, 5)), **kw)
    assert sel.indices.tolist() == [oc.rows[i] for i in order]
    assert sel.windows.tolist() == [oc.windows[i] for i in order]
    assert [int(g) for g in sel.gains] == want_gains
    assert all(a >= b for a, b in zip(sel.gains[:-1], sel.gains[1:])), sel.gains
    # the picks fill the rows: the budget is reached, and not before the last pick
    spent = [len(oc.pieces[i]) for i in order]
    assert sum(spent) >= n * seq_len or len(order) == len(oc.pieces)
    assert sum(spent[:-1]) < n * seq_len
    # the pool itself agrees with the Python view of the corpus
    pool = sel.pool
    assert len(pool) == len(oc.pieces)
    assert pool.rows.tolist() == oc.rows and pool.windows.tolist() == oc.windows
    names = pool.corpus.type_names()
    assert {names[t]: int(c) for t, c in enumerate(pool.counts) if c} == dict(oc.counts)
    for i, s in enumerate(oc.sets):
        assert {names[t] for t in pool.corpus.candidate_types(i)} == s
    # each sample's text is the slice of its document that it feeds
    assert [[w.lower() for w in _core.segment_words(t)] for t in sel.texts] == [oc.pieces[i] for i in order]
    # statistics describe the fed rows: the oracle packs them independently
    rows = oracle.fill_rows([oc.pieces[i] for i in order], n, seq_len)
    fed = set().union(*map(set, rows)) if rows else set()
    assert sel.stats["types_covered"] == len(fed)
    assert sel.stats["tokens_fed"] == sum(map(len, rows))
    assert sel.stats["pad_tokens"] == n * seq_len - sum(map(len, rows))
    assert sel.stats["types_available"] == len(oc.counts)
    assert [r.tolist() for r in sel.fed_type_rows()] == [[names.index(w) for w in r] for r in rows]


@SETTINGS
@given(texts=corpora, data=st.data())
def test_zipf_weights_match_python(texts, data):
    oc = oracle_corpus(texts)
    assume(oc.pieces)
    pool = zipcal.load_pool(texts, tokenizer="words", min_tokens=1)
    names = pool.corpus.type_names()
    want = oracle.zipf_weights(oc.counts)
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
@given(texts=corpora, data=st.data(), seq_len=st.integers(1, 6))
def test_random_draws_are_disjoint_and_fill_the_budget(texts, data, seq_len):
    pool = zipcal.load_pool(texts, tokenizer="words", min_tokens=1, seq_len=seq_len)
    assume(len(pool) >= 2)
    n = data.draw(st.integers(1, len(pool) // 2), label="n")
    seed = data.draw(st.integers(0, 1000), label="seed")
    costs = pool.tokens  # words mode: a candidate costs its words, there is no separator
    budget = n * seq_len
    d0 = zipcal.select(pool, n, strategy="random", seed=seed, draw=0)
    d0b = zipcal.select(pool, n, strategy="random", seed=seed)
    assert d0.indices.tolist() == d0b.indices.tolist()
    c0 = d0.candidates.tolist()
    assert len(set(c0)) == len(c0) >= n
    # the shortest run of picks that fills the rows (or every candidate)
    assert costs[c0].sum() >= budget or len(c0) == len(pool)
    assert costs[c0[:-1]].sum() < budget
    rest = costs.sum() - costs[c0].sum()
    if rest < budget:
        with pytest.raises(zipcal.NotEnoughCandidatesError):
            zipcal.select(pool, n, strategy="random", seed=seed, draw=1)
        return
    d1 = zipcal.select(pool, n, strategy="random", seed=seed, draw=1)
    c1 = d1.candidates.tolist()
    assert len(set(c1)) == len(c1) and not set(c0) & set(c1)
    assert costs[c1].sum() >= budget and costs[c1[:-1]].sum() < budget
    valid_rows = set(pool.rows.tolist())
    assert set(d0.indices.tolist()) <= valid_rows and set(d1.indices.tolist()) <= valid_rows


def test_greedy_tie_breaks_by_size_then_index():
    # gains tie at 0 after the first picks: larger sets first, then the lower index
    texts = ["q", "q r", "q r", "r", "s t u", "s"]
    sel = zipcal.select(texts, 6, tokenizer="words", min_tokens=1)
    oc = oracle_corpus(texts)
    order, gains = oracle.greedy(oc.sets, oracle.uniform_weights(oc.counts), 6)
    assert sel.indices.tolist() == [oc.rows[i] for i in order] == [4, 1, 2, 0, 3, 5]
    assert sel.gains.tolist() == gains == [3, 2, 0, 0, 0, 0]


def test_oracle_on_real_text(wikitext_lines):
    texts = wikitext_lines[:600]
    n, seq_len = 25, 64
    for strategy, weighting in (("zipcal", "uniform"), ("zipcal-zipf", "zipf")):
        order, want_gains, oc = oracle_select(texts, n, weighting, seq_len)
        sel = zipcal.select(texts, n, tokenizer="words", min_tokens=1, strategy=strategy, seq_len=seq_len)
        assert sel.indices.tolist() == [oc.rows[i] for i in order]
        assert sel.windows.tolist() == [oc.windows[i] for i in order]
        assert sel.gains.tolist() == want_gains
        assert sel.stats["tokens_fed"] == n * seq_len
        evaluations = sel.stats["gain_evaluations"]
        # lazy evaluation must beat recomputing every gain every round
        assert evaluations < n * len(sel.pool)


def test_weighting_option_of_zipcal_strategy():
    texts = ["a b c d", "e", "e f", "a b", "g h a"] * 3 + ["rare words only here"]
    kw = dict(tokenizer="words", min_tokens=1, seq_len=4)
    z1 = zipcal.select(texts, 4, strategy="zipcal", weighting="zipf", **kw)
    z2 = zipcal.select(texts, 4, strategy="zipcal-zipf", **kw)
    assert z1.indices.tolist() == z2.indices.tolist()
    order, _, oc = oracle_select(texts, 4, "zipf", seq_len=4)
    assert z1.indices.tolist() == [oc.rows[i] for i in order]
    with pytest.raises(zipcal.InvalidArgumentError):
        zipcal.select(texts, 4, strategy="zipcal", weighting="bogus", **kw)

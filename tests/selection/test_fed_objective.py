"""Coverage is counted on the tokens a calibration row feeds, and every strategy feeds
the same number of real tokens.

The oracle here tokenizes each document with the ``tokenizers`` library, cuts it into
the candidates a row of ``seq_len`` tokens feeds, and runs the plain greedy of
``oracle.py`` on them: zipcal's selection must match it, beat random draws of the
same token budget, and beat greedy on whole-document type sets (the old objective,
which counts tokens that truncation then throws away)."""

from __future__ import annotations

from typing import List, Sequence, Set, Tuple

import numpy as np
import pytest
from support import oracle

import zipcal
import zipcal.tokenizer
from zipcal import _core

tokenizers = pytest.importorskip("tokenizers")


@pytest.fixture(scope="module")
def articles(wikitext_valid) -> List[str]:
    """The 60 articles of WikiText-2 valid (an article starts at a ' = Title = ' line)."""
    out: List[List[str]] = []
    for line in wikitext_valid.read_text(encoding="utf-8").split("\n"):
        if line.startswith(" = ") and not line.startswith(" = = "):
            out.append([])
        if out:
            out[-1].append(line)
    return ["\n".join(a).strip() for a in out]


@pytest.fixture(scope="module")
def gpt2():
    tok = tokenizers.Tokenizer.from_str(zipcal.tokenizer.gpt2_tokenizer_json())
    table = zipcal.tokenizer.resolve("gpt2").token_types()
    return tok, table


def _types(table: np.ndarray, ids: Sequence[int]) -> List[int]:
    return [int(t) for t in table[np.asarray(ids, dtype=np.int64)] if t != _core.NO_TYPE]


def _fed_types(rows: Sequence[Sequence[int]]) -> int:
    return len({t for r in rows for t in r if t is not None})


def oracle_windows(docs: Sequence[str], gpt2, seq_len: int) -> Tuple[List[List[int]], List[Set[int]]]:
    """Token ids and type sets of every window of ``seq_len`` tokens of every document
    (GPT-2 adds no special tokens, so a row holds ``seq_len`` of them)."""
    tok, table = gpt2
    pieces: List[List[int]] = []
    for d in docs:
        ids = tok.encode(d).ids
        pieces += [ids[k : k + seq_len] for k in range(0, len(ids), seq_len)]
    pieces = [p for p in pieces if len(p) >= 16]  # the default min_tokens
    return pieces, [set(_types(table, p)) for p in pieces]


def oracle_fed_coverage(pieces, sets, order, n: int, seq_len: int, gpt2) -> int:
    """Distinct types of the rows that ``fill`` packs from the picks (EOS between
    short candidates carries no type)."""
    _, table = gpt2
    typed = [[int(t) if t != _core.NO_TYPE else None for t in table[np.asarray(pieces[i])]] for i in order]
    return _fed_types(oracle.fill_rows(typed, n, seq_len, separator=[None]))


@pytest.mark.parametrize("seq_len,n", [(128, 32), (512, 16)])
def test_default_feeds_the_coverage_it_optimises(articles, gpt2, seq_len, n):
    assert len(articles) == 60
    sel = zipcal.select(articles, n, tokenizer="gpt2", seq_len=seq_len)
    assert sel.stats["unit"] == "window"
    # exact greedy on the fed tokens, computed independently
    pieces, sets = oracle_windows(articles, gpt2, seq_len)
    costs = [len(p) + (1 if len(p) < seq_len else 0) for p in pieces]
    order, gains = oracle.greedy(sets, oracle.uniform_weights({t: 1 for s in sets for t in s}), n, costs, n * seq_len)
    want = oracle_fed_coverage(pieces, sets, order, n, seq_len, gpt2)
    got = sel.stats["types_covered"]
    assert got >= 0.99 * want, (got, want)
    assert [int(g) for g in sel.gains] == gains
    # the statistic is what the rows hold: recount it from the tensors
    batch = sel.to_input_ids(return_tensors="np")
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert ids.shape == (n, seq_len) and mask.all()
    _, table = gpt2
    assert len(set(_types(table, ids[mask == 1]))) == got == sel.stats["packing"]["types_fed"]
    # every one of 5 random draws of the same token budget feeds fewer types
    randoms = [zipcal.select(sel.pool, n, strategy="random", seed=11, draw=k) for k in range(5)]
    for r in randoms:
        assert r.stats["tokens_fed"] == sel.stats["tokens_fed"] == n * seq_len
    assert got > max(r.stats["types_covered"] for r in randoms), [r.stats["types_covered"] for r in randoms]
    # greedy over whole documents' types, each fed truncated (the old default), feeds fewer
    tok, table = gpt2
    docs = [tok.encode(a).ids for a in articles]
    doc_sets = [set(_types(table, d)) for d in docs]
    whole, _ = oracle.greedy(doc_sets, oracle.uniform_weights({t: 1 for s in doc_sets for t in s}), n)
    assert got > len({t for i in whole for t in _types(table, docs[i][:seq_len])})


def test_doc_unit_counts_only_the_fed_prefix(articles, gpt2):
    seq_len, n = 128, 16
    sel = zipcal.select(articles, n, tokenizer="gpt2", seq_len=seq_len, unit="doc")
    tok, table = gpt2
    prefixes = [tok.encode(a).ids[:seq_len] for a in articles]
    pool = sel.pool
    assert len(pool) == 60 and (pool.tokens <= seq_len).all()
    for i in range(len(pool)):
        assert set(pool.corpus.candidate_types(i).tolist()) == set(_types(table, prefixes[int(pool.rows[i])]))
    order, _ = oracle.greedy(
        [set(_types(table, p)) for p in prefixes],
        oracle.uniform_weights({t: 1 for p in prefixes for t in _types(table, p)}),
        n,
    )
    assert sel.indices.tolist() == order  # every prefix is a full row: n picks
    assert sel.stats["types_covered"] == len({t for i in order for t in _types(table, prefixes[i])})


def _mixed_docs(articles: List[str]) -> List[str]:
    """Long articles, their single paragraphs, and one-line fragments."""
    paragraphs = [p for a in articles[:20] for p in a.split("\n") if p.strip()]
    return articles[20:40] + paragraphs[:300] + [p.split(" . ")[0] for p in paragraphs[300:600]]


@pytest.mark.parametrize("tokenizer", ["gpt2", "words"])
def test_every_strategy_feeds_the_same_real_tokens(articles, tokenizer):
    n, seq_len = 24, 96
    pool = zipcal.load_pool(_mixed_docs(articles), tokenizer=tokenizer, seq_len=seq_len)
    lengths = pool.tokens
    assert (lengths < seq_len).sum() > 100 and (lengths == seq_len).sum() > 100
    results = {}
    for strategy, opts in [
        ("zipcal", {}),
        ("zipcal-zipf", {}),
        ("random", {}),
        ("random", {"draw": 1}),
        ("zipcal-words-dataset", {}),
    ]:
        sel = zipcal.select(pool, n, strategy=strategy, seed=4, **opts)
        results[(strategy, opts.get("draw"))] = sel
        if tokenizer == "gpt2" or strategy != "zipcal-words-dataset":
            # (in words mode a words-dataset row counts only the Unicode words of its
            # whitespace-separated pieces, not its punctuation)
            assert sel.stats["tokens_fed"] == n * seq_len and sel.stats["pad_tokens"] == 0, strategy
        # what the compressor receives: n full rows of real tokens (in words mode a
        # selected word is at least one GPT-2 token)
        batch = sel.to_input_ids(seq_len, tokenizer="gpt2", return_tensors="np")
        assert batch["input_ids"].shape == (n, seq_len) and batch["attention_mask"].all(), strategy
        assert sel.stats["packing"]["pad_tokens"] == 0
    # random fills the same budget with more (shorter) candidates than greedy coverage
    assert len(results[("random", None)]) > len(results[("zipcal", None)])


def test_short_pool_is_padded_and_reported(caplog):
    docs = ["a few words here", "and a few more words over there", "the end of it", "one more", "last"]
    sel = zipcal.select(docs, 4, tokenizer="gpt2", seq_len=32, min_tokens=1)
    assert len(sel) == 5  # every candidate, and still not enough for 4 rows
    s = sel.stats
    seg = zipcal.tokenizer.resolve("gpt2")
    fed = sum(len(e) + 1 for e in seg.encode_batch(docs, False))  # each followed by EOS
    assert s["tokens_fed"] == fed and s["pad_tokens"] == 4 * 32 - fed > 0
    assert s["pad_fraction"] == pytest.approx(s["pad_tokens"] / (4 * 32))
    assert "too few tokens" in caplog.text
    batch = sel.to_input_ids(return_tensors="np")
    # rows that hold something: the packed stream of all five, then its padded tail
    assert batch["input_ids"].shape == (-(-fed // 32), 32)
    assert int(batch["attention_mask"].sum()) == fed == sel.stats["packing"]["tokens"]


def test_special_tokens_leave_room_in_each_row(tmp_path):
    """A tokenizer that adds BOS to every sequence: candidates are seq_len - 1 tokens,
    so that BOS + candidate is exactly a row."""
    import json

    spec = json.loads(zipcal.tokenizer.gpt2_tokenizer_json())
    bos = spec["model"]["vocab"]["<|endoftext|>"]
    spec["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [bos], "tokens": ["<|endoftext|>"]}},
    }
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(spec))
    text = " ".join(f"word{i} and more" for i in range(400))
    sel = zipcal.select([text], 3, tokenizer=str(path), seq_len=64)
    assert sel.pool.capacity == 63 and (sel.pool.tokens <= 63).all()
    batch = sel.to_input_ids(return_tensors="np")
    ids = batch["input_ids"]
    assert ids.shape == (3, 64) and batch["attention_mask"].all()
    assert (ids[:, 0] == bos).all()
    plain = tokenizers.Tokenizer.from_str(zipcal.tokenizer.gpt2_tokenizer_json()).encode(text).ids
    for row, c in zip(ids, sel.candidates):
        start = int(sel.pool.windows[c]) * 63
        assert row[1:].tolist() == plain[start : start + 63]

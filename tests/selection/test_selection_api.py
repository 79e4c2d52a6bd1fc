"""The Selection object: attributes, statistics, packing into tensors, output files,
window candidates, the words-dataset variant, and determinism across threads,
Python threads and fork()."""

from __future__ import annotations

import concurrent.futures
import json
import os
import select as select_mod
import signal
import time
from collections import Counter
from pathlib import Path
from typing import List

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import zipcal
import zipcal.tokenizer
from zipcal import _core

TIMING_KEYS = {"ingest_seconds", "select_seconds"}
COLUMNS = ["row", "source", "source_row", "window", "tokens", "gain", "text"]


@pytest.fixture(scope="module")
def words_pool(wikitext_valid):
    return zipcal.load_pool(str(wikitext_valid), text_split="line", seq_len=128)


@pytest.fixture(scope="module")
def gpt2_pool(wikitext_valid):
    return zipcal.load_pool(str(wikitext_valid), tokenizer="gpt2", text_split="line", seq_len=128)


@pytest.fixture(scope="module")
def gpt2_tok():
    tokenizers = pytest.importorskip("tokenizers")
    return tokenizers.Tokenizer.from_str(zipcal.tokenizer.gpt2_tokenizer_json())


def _stable_stats(stats):
    return {k: v for k, v in stats.items() if k not in TIMING_KEYS and k != "packing"}


# ------------------------------------------------------------------ attributes and stats


def test_selection_attributes(words_pool):
    pool = words_pool
    sel = zipcal.select(pool, 32)
    k = len(sel)
    assert sel.rows == 32 and k >= 32  # short candidates share rows
    assert list(sel) == sel.texts
    assert sel.candidates.dtype == np.int64 and len(set(sel.candidates.tolist())) == k
    assert sel.indices.tolist() == pool.rows[sel.candidates].tolist()
    assert sel.windows.tolist() == pool.windows[sel.candidates].tolist()
    for c, r, w, t in zip(sel.candidates, sel.indices, sel.windows, sel.texts):
        assert t == pool.candidate_text(int(c)) and t in pool.row_text(int(r))
        words = [x.lower() for x in _core.segment_words(pool.row_text(int(r)))]
        assert [x.lower() for x in _core.segment_words(t)] == words[int(w) * 128 : (int(w) + 1) * 128]
    assert sel.token_counts.tolist() == [len(_core.segment_words(t)) for t in sel.texts]
    # the picks fill the rows, and the last one is the one that reaches the budget
    assert int(sel.token_counts.sum()) >= 32 * 128 > int(sel.token_counts[:-1].sum())
    assert all(src == str(pool._parts[0].source) for src in sel.sources)
    assert sel.source_rows.tolist() == sel.indices.tolist()
    assert len(sel.gains) == k
    assert all(a >= b for a, b in zip(sel.gains[:-1], sel.gains[1:]))
    assert "Selection(rows=32 x 128" in repr(sel) and "zipcal" in repr(sel)
    assert "Pool(" in repr(pool)


def test_selection_stats(words_pool):
    sel = zipcal.select(words_pool, 64)
    s = sel.stats
    assert s["n"] == 64 and s["strategy"] == "zipcal" and s["unit"] == "window"
    assert s["candidates"] == len(sel) and s["seq_len"] == s["row_capacity"] == 128
    assert 0 < s["types_covered"] <= s["types_available"]
    assert s["types_available"] == int((words_pool.counts > 0).sum())
    assert s["coverage"] == pytest.approx(s["types_covered"] / s["types_available"])
    # greedy gains add up to the covered types (uniform weights), but for the tokens
    # of the last pick that do not fit in the rows
    assert int(sel.gains[:-1].sum()) <= s["types_covered"] <= int(sel.gains.sum())
    assert s["tokens_fed"] == 64 * 128 and s["pad_tokens"] == 0 and s["pad_fraction"] == 0
    assert s["tokens_selected"] == int(sel.token_counts.sum()) >= s["tokens_fed"]
    assert isinstance(s["zipf_exponent"], float) and s["zipf_exponent"] > 0
    assert isinstance(s["pool_zipf_exponent"], float)
    assert 0 < s["type_token_ratio"] <= 1
    assert s["pool_candidates"] == len(words_pool)
    assert s["pool_tokens"] == int(words_pool.counts.sum())
    tc = sel.type_counts()
    assert int(tc.sum()) == s["tokens_fed"]  # every word is typed in words mode
    assert int((tc > 0).sum()) == s["types_covered"]
    ps = words_pool.stats
    assert ps["candidates"] == len(words_pool) and ps["rows"] == words_pool.report["rows"]
    assert ps["types"] == s["types_available"]


def test_zipf_exponent_is_the_least_squares_slope():
    from zipcal.frequencies import zipf_exponent

    # An exact power law gives its exponent back.
    ranks = np.arange(1, 5001, dtype=np.float64)
    assert zipf_exponent(1e9 * ranks**-1.3) == pytest.approx(1.3, abs=1e-9)
    # On ragged counts (zeros dropped, order ignored) it is the least-squares slope.
    rng = np.random.default_rng(0)
    counts = rng.zipf(1.7, size=20000) * rng.integers(0, 2, size=20000)
    f = np.sort(counts[counts > 0])[::-1].astype(np.float64)
    slope = np.polyfit(np.log(np.arange(1, len(f) + 1)), np.log(f), 1)[0]
    assert zipf_exponent(counts) == pytest.approx(-slope, rel=1e-9)
    assert zipf_exponent(np.array([0, 5, 0])) is None
    # Integer counts are grouped by value, not sorted: the same slope as on floats,
    # with runs of equal counts and counts past the grouped range.
    for dtype in (np.uint64, np.int64, np.uint32):
        ints = (counts * rng.integers(1, 40, size=len(counts))).astype(dtype)
        ints[:50] = 70_000 + rng.integers(0, 3, size=50)
        assert zipf_exponent(ints) == pytest.approx(zipf_exponent(ints.astype(np.float64)), rel=1e-12)


def test_zipcal_covers_more_than_random(words_pool):
    z = zipcal.select(words_pool, 64)
    zc = z.stats["coverage"]
    randoms = [zipcal.select(words_pool, 64, strategy="random", seed=7, draw=k).stats["coverage"] for k in range(5)]
    assert all(zc >= r for r in randoms), f"zipcal coverage {zc:.4f} vs random draws {randoms}"
    zz = zipcal.select(words_pool, 64, strategy="zipcal-zipf")
    assert zz.stats["weighting"] == "zipf"
    assert all(zz.stats["coverage"] >= r for r in randoms), (zz.stats["coverage"], randoms)


def test_gpt2_selection_type_counts(gpt2_pool):
    sel = zipcal.select(gpt2_pool, 16)
    tc = sel.type_counts()
    # whitespace-only tokens and separators have no type, so typed tokens <= tokens
    assert 0 < int(tc.sum()) <= sel.stats["tokens_fed"] == 16 * 128
    assert int((tc > 0).sum()) == sel.stats["types_covered"]
    assert sel.stats["segmenter"] == "gpt2"


# ------------------------------------------------------------------ packing


def _encode(tok, texts) -> List[List[int]]:
    return [tok.encode(t, add_special_tokens=True).ids for t in texts]


@pytest.mark.parametrize("tensors", ["np", "pt"])
def test_to_input_ids_truncate(gpt2_pool, gpt2_tok, tensors):
    sel = zipcal.select(gpt2_pool, 12)
    k = len(sel)
    seq_len = 48
    batch = sel.to_input_ids(seq_len, policy="truncate", return_tensors=tensors)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    if tensors == "pt":
        import torch

        assert isinstance(ids, torch.Tensor) and ids.dtype == torch.int64 and mask.dtype == torch.int64
        ids, mask = ids.numpy(), mask.numpy()
    else:
        assert isinstance(ids, np.ndarray) and ids.dtype == np.int64
    assert ids.shape == mask.shape == (k, seq_len)
    # each row: the candidate's own tokens, cut from its whole document's encoding
    pool = sel.pool
    for row, m, c in zip(ids, mask, sel.candidates):
        doc = gpt2_tok.encode(pool.row_text(int(pool.rows[c]))).ids
        start = int(pool.windows[c]) * pool.capacity
        e = doc[start : start + pool.capacity][:seq_len]
        assert row[: len(e)].tolist() == e
        assert m.tolist() == [1] * len(e) + [0] * (seq_len - len(e))
    pk = sel.stats["packing"]
    assert pk["policy"] == "truncate" and pk["rows"] == k and pk["seq_len"] == seq_len
    assert pk["tokens"] == int(mask.sum())


def test_to_input_ids_padding_is_recorded(gpt2_tok):
    docs = ["short one here", "a much longer document " * 20, "mid length text with a few words in it"]
    sel = zipcal.select(docs, 3, tokenizer="gpt2", min_tokens=1, unit="doc")
    batch = sel.to_input_ids(32, policy="truncate", return_tensors="np")
    ids, mask = batch["input_ids"], batch["attention_mask"]
    pk = sel.stats["packing"]
    eot = gpt2_tok.token_to_id("<|endoftext|>")
    assert pk["pad_token_id"] == eot
    assert pk["pad_tokens"] == int((mask == 0).sum()) > 0
    assert pk["pad_fraction"] == pytest.approx(pk["pad_tokens"] / mask.size)
    assert (ids[mask == 0] == eot).all()
    total = sum(min(len(e), 32) for e in _encode(gpt2_tok, sel.texts))
    assert pk["dropped_tokens"] == total - int(mask.sum()) == 0
    # each row: ones then zeros
    for m in mask:
        k = int(m.sum())
        assert m[:k].all() and not m[k:].any()
    custom = sel.to_input_ids(32, policy="truncate", pad_token_id=7, return_tensors="np")
    assert (custom["input_ids"][custom["attention_mask"] == 0] == 7).all()
    assert sel.stats["packing"]["pad_token_id"] == 7


def test_to_input_ids_random_window(gpt2_pool, gpt2_tok):
    sel = zipcal.select(gpt2_pool, 10, seed=3)
    seq_len = 40
    a = sel.to_input_ids(seq_len, policy="random-window", return_tensors="np")
    b = sel.to_input_ids(seq_len, policy="random-window", return_tensors="np")
    c = sel.to_input_ids(seq_len, policy="random-window", seed=11, return_tensors="np")
    assert np.array_equal(a["input_ids"], b["input_ids"])
    assert a["input_ids"].shape == (len(sel), seq_len)
    encoded = _encode(gpt2_tok, sel.texts)
    assert any(len(e) > seq_len for e in encoded)
    starts = []
    for row, e in zip(a["input_ids"].tolist(), encoded):
        if len(e) <= seq_len:
            assert row[: len(e)] == e
            starts.append(0)
            continue
        found = [s for s in range(len(e) - seq_len + 1) if e[s : s + seq_len] == row]
        assert found, "row is not a window of its document"
        starts.append(found[0])
    assert any(s > 0 for s in starts)
    assert not np.array_equal(a["input_ids"], c["input_ids"])
    assert sel.stats["packing"]["policy"] == "random-window"


def test_to_input_ids_concat_chunk(gpt2_pool, gpt2_tok):
    sel = zipcal.select(gpt2_pool, 6)
    seq_len = 64
    batch = sel.to_input_ids(seq_len, policy="concat-chunk", return_tensors="np")
    ids, mask = batch["input_ids"], batch["attention_mask"]
    eot = gpt2_tok.token_to_id("<|endoftext|>")
    flat: List[int] = []
    for e in _encode(gpt2_tok, sel.texts):
        flat += e + [eot]
    rows = min(len(sel), len(flat) // seq_len)
    assert ids.shape == (rows, seq_len)
    assert mask.all(), "concat-chunk rows must be full"
    assert ids.reshape(-1).tolist() == flat[: rows * seq_len]
    assert sel.stats["packing"]["pad_tokens"] == 0
    assert sel.stats["packing"]["rows"] == rows


def test_to_input_ids_default_seq_len_and_auto_tensors(gpt2_pool):
    import torch

    sel = zipcal.select(gpt2_pool, 4)
    batch = sel.to_input_ids()
    assert isinstance(batch["input_ids"], torch.Tensor)
    assert tuple(batch["input_ids"].shape) == (4, gpt2_pool.seq_len)


def test_to_input_ids_with_tokenizer_for_words_selection(words_pool, gpt2_tok):
    sel = zipcal.select(words_pool, 5)
    batch = sel.to_input_ids(16, tokenizer="gpt2", return_tensors="np")
    # rows of 16 GPT-2 tokens: the candidates (128-word windows) long enough for a row
    # take one each, in pick order
    want = [e[:16] for e in _encode(gpt2_tok, sel.texts) if len(e) >= 16][:5]
    assert batch["input_ids"].tolist() == want
    assert batch["attention_mask"].all()


def test_to_dataset(gpt2_pool):
    datasets = pytest.importorskip("datasets")
    sel = zipcal.select(gpt2_pool, 5)
    ds = sel.to_dataset(32)
    assert isinstance(ds, datasets.Dataset)
    assert set(ds.column_names) == {"input_ids", "attention_mask"}
    assert len(ds) == 5
    want = sel.to_input_ids(32, return_tensors="np")
    assert ds["input_ids"] == want["input_ids"].tolist()
    assert ds["attention_mask"] == want["attention_mask"].tolist()


# ------------------------------------------------------------------ output files


def _check_table(table: pa.Table, sel):
    assert table.column_names == COLUMNS
    assert table["row"].to_pylist() == sel.indices.tolist()
    assert table["source"].to_pylist() == sel.sources
    assert table["source_row"].to_pylist() == sel.source_rows.tolist()
    assert table["window"].to_pylist() == sel.windows.tolist()
    assert table["tokens"].to_pylist() == sel.token_counts.tolist()
    assert table["gain"].to_pylist() == sel.gains.tolist()
    assert table["text"].to_pylist() == sel.texts


def test_save_parquet_and_jsonl_round_trip(tmp_path, words_pool):
    sel = zipcal.select(words_pool, 20)
    p = tmp_path / "out" / "sel.parquet"
    sel.save(p)
    t = pq.read_table(p)
    _check_table(t, sel)
    meta = json.loads(t.schema.metadata[b"zipcal"])
    assert meta["types_covered"] == sel.stats["types_covered"] and meta["n"] == 20
    assert meta["seq_len"] == 128 and meta["candidates"] == len(sel)
    j = tmp_path / "sel.jsonl"
    sel.save(str(j))
    recs = [json.loads(l) for l in j.read_text(encoding="utf-8").splitlines()]
    assert len(recs) == len(sel) >= 20
    assert [list(r) for r in recs] == [COLUMNS] * len(sel)
    _check_table(pa.Table.from_pylist(recs), sel)
    # explicit format overrides the extension
    k = tmp_path / "sel.data"
    sel.save(k, format="jsonl")
    assert k.read_text(encoding="utf-8") == j.read_text(encoding="utf-8")


def test_save_random_selection_has_zero_gains(tmp_path, words_pool):
    sel = zipcal.select(words_pool, 5, strategy="random", seed=1)
    assert sel.gains is None
    sel.save(tmp_path / "r.parquet")
    assert pq.read_table(tmp_path / "r.parquet")["gain"].to_pylist() == [0] * len(sel)


def _no_temp_files(folder: Path):
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("exc", [OSError("disk full"), KeyboardInterrupt()])
def test_save_is_atomic(tmp_path, words_pool, monkeypatch, exc):
    sel = zipcal.select(words_pool, 4)
    target = tmp_path / "sel.parquet"
    target.write_bytes(b"previous content")

    def failing_write(table, where, *a, **k):
        Path(where).write_bytes(b"PAR1 partial")
        raise exc

    monkeypatch.setattr(pq, "write_table", failing_write)
    with pytest.raises(type(exc)):
        sel.save(target)
    assert target.read_bytes() == b"previous content"
    assert _no_temp_files(tmp_path) == []
    monkeypatch.undo()
    # a JSONL write failing half way (unserialisable stats are not involved; break the file)
    j = tmp_path / "sel.jsonl"
    j.write_text("old\n", encoding="utf-8")
    import zipcal.selection as selmod

    def bad_dumps(*a, **k):
        raise exc

    monkeypatch.setattr(selmod.json, "dumps", bad_dumps)
    with pytest.raises(type(exc)):
        sel.save(j)
    monkeypatch.undo()
    assert j.read_text(encoding="utf-8") == "old\n"
    assert _no_temp_files(tmp_path) == []
    sel.save(target)
    _check_table(pq.read_table(target), sel)
    assert _no_temp_files(tmp_path) == []


# ------------------------------------------------------------------ windows


@pytest.mark.parametrize("tokenizer", ["words", "gpt2"])
def test_window_candidates(wikitext_valid, tokenizer):
    seq_len = 48
    pool = zipcal.load_pool(
        str(wikitext_valid), tokenizer=tokenizer, unit="window", seq_len=seq_len, min_tokens=8, text_split="line"
    )
    assert pool.unit == "window"
    assert (pool.tokens <= seq_len).all() and (pool.tokens >= 8).all()
    assert pool.windows.max() > 0
    sel = zipcal.select(pool, 24)
    assert sel.stats["unit"] == "window"
    assert (sel.token_counts <= seq_len).all()
    names = pool.corpus.type_names()
    for c, r, w, text in zip(sel.candidates, sel.indices, sel.windows, sel.texts):
        doc = pool.row_text(int(r))
        assert text and text in doc
        seq = pool.candidate_type_sequence(int(c))
        assert len(seq) == pool.tokens[c]
        typed = {int(t) for t in seq if t != _core.NO_TYPE}
        assert typed == set(pool.corpus.candidate_types(int(c)).tolist())
        if tokenizer == "words":
            words = [x.lower() for x in _core.segment_words(doc)]
            window = words[int(w) * seq_len : (int(w) + 1) * seq_len]
            assert {names[t] for t in typed} == set(window)
            assert [x.lower() for x in _core.segment_words(text)] == window


def test_window_rows_and_doc_rows_agree(wikitext_valid):
    # a document shorter than seq_len is one window holding the whole document
    docs = ["one two three four five six seven", "alpha beta gamma delta " * 10]
    pool = zipcal.load_pool(docs, unit="window", seq_len=16, min_tokens=1)
    assert pool.rows.tolist() == [0, 1, 1, 1]
    assert pool.windows.tolist() == [0, 0, 1, 2]
    assert pool.tokens.tolist() == [7, 16, 16, 8]
    assert pool.candidate_text(0) == docs[0]


# ------------------------------------------------------------------ words dataset


def reference_words_dataset(candidate_texts: List[str], n: int, sentence_length: int, seed: int) -> List[str]:
    """The reference code's ``words_dataset_sampling``, written out step by step: every
    pool item (already cut to the sequence length) lower-cased and split on
    whitespace, all words shuffled into one bag, ``n`` sentences of
    ``sentence_length`` words dealt by cycling through the bag. (The reference
    shuffles with ``random.shuffle``; this uses the seeded permutation zipcal uses.)"""
    all_tokens = []
    for text in candidate_texts:
        all_tokens.extend(text.lower().split())
    order = np.random.default_rng(seed).permutation(len(all_tokens))
    shuffled = [all_tokens[i] for i in order]
    out, idx = [], 0
    for _ in range(n):
        words = []
        for _ in range(sentence_length):
            words.append(shuffled[idx % len(shuffled)])
            idx += 1
        out.append(" ".join(words))
    return out


def test_zipcal_words_dataset_is_the_reference_procedure():
    docs = [
        "The Quick brown fox, jumps over the lazy dog.",
        "A second document\nwith Two lines and 3 numbers: 1 2 3",
        "short",
        "Ünïcode wörds ARE lower-cased too; e-mail addresses stay whole",
    ] * 3
    pool = zipcal.load_pool(docs, seq_len=6, min_tokens=1)
    texts = pool.candidate_texts(range(len(pool)))
    assert len(texts) > len(docs)  # documents longer than 6 words are windowed
    for n, seed in ((4, 0), (9, 3)):
        d = zipcal.select(pool, n, strategy="zipcal-words-dataset", seed=seed)
        assert d.texts == reference_words_dataset(texts, n, 6, seed)
        assert d.synthetic and d.stats["synthetic"] is True and (d.candidates == -1).all()
        assert d.stats["bag_words"] == sum(len(t.split()) for t in texts)
    # rows enough for the whole bag: the pseudo-texts hold every word of the pool
    # with its frequency, and start over from the bag's start when it is used up
    bag = Counter(w for t in texts for w in t.lower().split())
    total = sum(bag.values())
    big = zipcal.select(pool, total // 6 + 1, strategy="zipcal-words-dataset", seed=3)
    dealt = [w for t in big.texts for w in t.split()]
    assert Counter(dealt[:total]) == bag and dealt[total:] == dealt[: len(dealt) - total]
    assert zipcal.select(pool, 4, strategy="zipcal-words-dataset", seed=1).texts != d.texts
    opt = zipcal.select(pool, 2, strategy="zipcal-words-dataset", words_per_sample=3)
    assert [len(t.split()) for t in opt.texts] == [3, 3]


def test_zipcal_words_dataset_fills_rows(gpt2_pool):
    d = zipcal.select(gpt2_pool, 8, strategy="zipcal-words-dataset", seed=1)
    assert len(d.texts) == 8 and d.stats["tokens_fed"] == 8 * 128 and d.stats["pad_tokens"] == 0
    batch = d.to_input_ids(return_tensors="np")
    assert batch["input_ids"].shape == (8, 128) and batch["attention_mask"].all()


# ------------------------------------------------------------------ determinism


def _core_corpus(texts, threads, task_bytes):
    _core.set_num_threads(threads)
    try:
        c = _core.Corpus(_core.Segmenter.words(), min_tokens=1, task_bytes=task_bytes)
        for k in range(0, len(texts), 500):
            c.add_texts(texts[k : k + 500], k)
        return c
    finally:
        _core.set_num_threads(0)


def test_core_is_deterministic_across_threads_and_tasks(wikitext_lines):
    texts = wikitext_lines[:1500]
    ref = None
    for threads in (1, 2, 8):
        c = _core_corpus(texts, threads, task_bytes=3000)
        out = (
            c.type_names(),
            c.counts().tolist(),
            [c.candidate_types(i).tolist() for i in range(0, len(c), 37)],
            c.greedy(40)[0].tolist(),
            c.greedy(40, "zipf")[0].tolist(),
        )
        if ref is None:
            ref = out
        else:
            assert out == ref, f"threads={threads} differs"


def test_selection_is_identical_across_thread_counts(tmp_path, wikitext_valid):
    tables = []
    for threads in (1, 2, 8):
        for tok in ("words", "gpt2"):
            sel = zipcal.select(str(wikitext_valid), 32, tokenizer=tok, threads=threads, text_split="line", seq_len=256)
            path = tmp_path / f"{tok}-{threads}.parquet"
            sel.save(path)
            tables.append((tok, threads, pq.read_table(path), _stable_stats(sel.stats)))
    for tok in ("words", "gpt2"):
        group = [t for t in tables if t[0] == tok]
        for _, threads, table, stats in group[1:]:
            assert table.equals(group[0][2]), f"{tok}: threads={threads} selected differently"
            assert stats == group[0][3]
    assert zipcal.get_num_threads() >= 1


def test_saved_parquet_is_byte_identical_across_thread_counts(tmp_path, wikitext_valid):
    blobs = []
    for threads in (1, 2, 8):
        sel = zipcal.select(str(wikitext_valid), 32, threads=threads, text_split="line")
        path = tmp_path / f"{threads}.parquet"
        sel.save(path)
        blobs.append(path.read_bytes())
    assert blobs[0] == blobs[1] == blobs[2]


@pytest.mark.timeout(60)
def test_selection_from_several_python_threads(wikitext_lines):
    chunks = [wikitext_lines[i::4] for i in range(4)]
    tokenizers = ["words", "gpt2", "words", "gpt2"]

    def run(k):
        sel = zipcal.select(chunks[k], 12, tokenizer=tokenizers[k], min_tokens=4, seq_len=128)
        return sel.indices.tolist(), sel.gains.tolist()

    sequential = [run(k) for k in range(4)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as ex:
        for _ in range(2):
            parallel = list(ex.map(run, range(4)))
            assert parallel == sequential


@pytest.mark.timeout(60)
def test_selection_in_forked_child(wikitext_lines):
    if not hasattr(os, "fork"):
        pytest.skip("os.fork is not available on this platform")
    texts = wikitext_lines[:800]
    parent = zipcal.select(texts, 16, tokenizer="gpt2", min_tokens=4, seq_len=128)  # starts the worker pool
    want = zipcal.select(texts[::-1], 16, min_tokens=4).indices.tolist()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(r)
            got = zipcal.select(texts[::-1], 16, min_tokens=4).indices.tolist()
            again = zipcal.select(texts, 16, tokenizer="gpt2", min_tokens=4, seq_len=128).indices.tolist()
            os.write(w, json.dumps([got, again]).encode())
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    data = b""
    deadline = time.monotonic() + 45
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select_mod.select([r], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            chunk = os.read(r, 65536)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(r)
    finished, status = 0, 0
    while time.monotonic() < deadline + 5:
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished:
            break
        time.sleep(0.05)
    if not finished:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child did not finish a selection within 45 s (deadlock after fork?)")
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"child status {status}"
    got, again = json.loads(data)
    assert got == want
    assert again == parent.indices.tolist()


def test_words_type_sequences_name_each_word_in_order():
    """Word-mode type sequences (cached word keys for ASCII text, names otherwise)
    give each word's type, and unseen words ids past num_types in order of first
    appearance, one text at a time."""
    docs = [
        "The cat sat on the mat, and the Cat's hat fell.",
        "Über-große Füße gehen nach München; the cat again.",
        "Numbers 3.14 and 1,000 or a.b.c with under_scores __ too",
    ]
    pool = zipcal.load_pool(docs, tokenizer="words", min_tokens=1)
    names = pool.corpus.type_names()
    index = {w: i for i, w in enumerate(names)}
    texts = docs + [
        "brand new words, the CAT and new words again",
        "naïve café brand",
        "München; naïve Über-große café, the cat nach naïve",  # cached and new chunks
        "",
    ]
    got = pool.corpus.type_sequences(texts)
    for text, seq in zip(texts, got):
        unseen: dict = {}
        want = []
        for w in (x.lower() for x in _core.segment_words(text)):
            if w not in index:
                unseen.setdefault(w, len(names) + len(unseen))
            want.append(index.get(w, unseen.get(w)))
        assert seq.tolist() == want, text
        assert pool.corpus.type_sequence(text).tolist() == want

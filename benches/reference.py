"""A straightforward pure-Python ZipCal, written the way a user would without zipcal.

* Reading: pyarrow reads the Parquet ``text`` column into Python strings.
* BPE mode: Hugging Face ``tokenizers`` ``Tokenizer.encode_batch`` (batches of
  1000 documents, multi-threaded inside the Rust extension); token ids are mapped
  to *types* through a precomputed Python list with zipcal's normalisation (decode
  each id alone, fall back to the raw vocabulary string when the decode contains
  U+FFFD, drop the 'Ġ' / '▁' markers, strip, lowercase, drop empty types and
  special tokens). One Python ``set`` of type ids per document.
* Words mode: ``re.findall(r"\\w+", text.lower())`` and a ``set`` of the words
  (a different segmentation from zipcal's Unicode UAX #29 words, so selections
  are comparable in cost but not identical).
* Documents with fewer than 16 tokens are skipped (zipcal's default ``min_tokens``).
* Greedy over the sets, with zipcal's tie-break (larger gain, then larger set,
  then lower index): ``lazy`` (a heap of stale upper bounds, exact) by default,
  or ``plain`` (every candidate's gain recomputed every round).

Usage::

    python benches/reference.py bench-data/corpus-30M-seed0-v1/*.parquet --mode gpt2 [--compare]
"""

from __future__ import annotations

import argparse
import heapq
import json
import re
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

MIN_TOKENS = 16
BATCH = 1000
MARKERS = ("\u0120", "\u2581")  # 'Ġ' (byte-level BPE space), '▁' (SentencePiece)
WORD = re.compile(r"\w+")


def log(msg: str) -> None:
    print(f"[reference] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------- reading


def read_texts(paths: Sequence[str], max_bytes: Optional[int] = None, column: str = "text") -> Tuple[List[str], int]:
    """The text column of Parquet files as Python strings (first ``max_bytes`` of UTF-8
    text when given: whole documents, stopping once the total reaches it)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    texts: List[str] = []
    total = 0
    for p in paths:
        for rb in pq.ParquetFile(p).iter_batches(columns=[column], batch_size=8192):
            col = rb.column(0)
            if max_bytes is not None:
                lens = pc.binary_length(col).to_pylist()
                for i, n in enumerate(lens):
                    total += n or 0
                    if total >= max_bytes:
                        texts.extend(col.slice(0, i + 1).to_pylist())
                        return [t or "" for t in texts], total
            else:
                total += pc.sum(pc.binary_length(col)).as_py() or 0
            texts.extend(col.to_pylist())
    return [t or "" for t in texts], total


# ----------------------------------------------------------------- types


def gpt2_tokenizer() -> Any:
    """GPT-2's byte-level BPE as a ``tokenizers.Tokenizer`` (built offline)."""
    from tokenizers import Tokenizer

    from zipcal.tokenizer import gpt2_tokenizer_json

    return Tokenizer.from_str(gpt2_tokenizer_json())


def load_tokenizer(name: str) -> Any:
    if name == "gpt2":
        return gpt2_tokenizer()
    from tokenizers import Tokenizer

    return Tokenizer.from_file(name)


def type_table(tokenizer: Any) -> Tuple[List[int], List[str]]:
    """``id -> type id`` (-1 = no type) and the type names."""
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    special = {i for i, tok in tokenizer.get_added_tokens_decoder().items() if tok.special}
    index: Dict[str, int] = {}
    table = [-1] * size
    for i in range(size):
        if i in special:
            continue
        raw = tokenizer.id_to_token(i)
        if raw is None:
            continue
        dec = tokenizer.decode([i], skip_special_tokens=False)
        text = raw if ("\ufffd" in dec or (not dec and raw)) else dec
        for m in MARKERS:
            text = text.replace(m, "")
        text = text.strip().lower()
        if text:
            table[i] = index.setdefault(text, len(index))
    names = [""] * len(index)
    for k, v in index.items():
        names[v] = k
    return table, names


# ----------------------------------------------------------------- candidate sets


class Sets:
    """Candidate type sets, their source rows and token counts, and stage timings."""

    def __init__(self) -> None:
        self.sets: List[Set[Any]] = []
        self.rows: List[int] = []
        self.tokens = 0  # tokens of the kept candidates (all tokens, typed or not)
        self.typed_tokens = 0
        self.skipped = 0
        self.seconds: Dict[str, float] = {}


def bpe_sets(texts: Sequence[str], tokenizer: Any, table: List[int], batch: int = BATCH) -> Sets:
    out = Sets()
    t_enc = t_set = 0.0
    get = table.__getitem__
    for lo in range(0, len(texts), batch):
        t0 = time.perf_counter()
        encs = tokenizer.encode_batch(texts[lo : lo + batch], add_special_tokens=False)
        t1 = time.perf_counter()
        for k, enc in enumerate(encs):
            ids = enc.ids
            if len(ids) < MIN_TOKENS:
                out.skipped += 1
                continue
            types = list(map(get, ids))
            s = set(types)
            s.discard(-1)
            out.sets.append(s)
            out.rows.append(lo + k)
            out.tokens += len(ids)
            out.typed_tokens += len(types) - types.count(-1)
        t_set += time.perf_counter() - t1
        t_enc += t1 - t0
    out.seconds = {"encode": t_enc, "sets": t_set}
    return out


def word_sets(texts: Sequence[str]) -> Sets:
    out = Sets()
    t0 = time.perf_counter()
    for row, text in enumerate(texts):
        words = WORD.findall(text.lower())
        if len(words) < MIN_TOKENS:
            out.skipped += 1
            continue
        out.sets.append(set(words))
        out.rows.append(row)
        out.tokens += len(words)
    out.typed_tokens = out.tokens
    out.seconds = {"split+sets": time.perf_counter() - t0}
    return out


# ----------------------------------------------------------------- greedy


def lazy_greedy(sets: Sequence[Set[Any]], n: int) -> Tuple[List[int], List[int], int]:
    """Exact greedy with stale upper bounds in a heap. Returns (picks, gains, evaluations)."""
    heap = [(-len(s), -len(s), i) for i, s in enumerate(sets)]
    heapq.heapify(heap)
    covered: Set[Any] = set()
    picks: List[int] = []
    gains: List[int] = []
    evaluations = 0
    while len(picks) < n and heap:
        neg_bound, neg_size, i = heapq.heappop(heap)
        g = len(sets[i] - covered)
        evaluations += 1
        if g == -neg_bound:
            picks.append(i)
            gains.append(g)
            covered |= sets[i]
        else:
            heapq.heappush(heap, (-g, neg_size, i))
    return picks, gains, evaluations


def plain_greedy(sets: Sequence[Set[Any]], n: int) -> Tuple[List[int], List[int], int]:
    """Greedy that recomputes every candidate's gain every round."""
    covered: Set[Any] = set()
    picks: List[int] = []
    gains: List[int] = []
    taken = [False] * len(sets)
    evaluations = 0
    for _ in range(min(n, len(sets))):
        best = None
        best_key = (-1, -1)
        for i, s in enumerate(sets):
            if taken[i]:
                continue
            key = (len(s - covered), len(s))
            evaluations += 1
            if key > best_key:
                best, best_key = i, key
        assert best is not None
        taken[best] = True
        picks.append(best)
        gains.append(best_key[0])
        covered |= sets[best]
    return picks, gains, evaluations


GREEDY = {"lazy": lazy_greedy, "plain": plain_greedy}


# ----------------------------------------------------------------- end to end


def reference_select(
    paths: Sequence[str],
    mode: str,
    n: int = 128,
    *,
    greedy: str = "lazy",
    max_bytes: Optional[int] = None,
    batch: int = BATCH,
) -> Dict[str, Any]:
    """Read, tokenize, build sets and run greedy. ``mode`` is 'words', 'gpt2' or a
    tokenizer.json path. Returns picked rows, gains and per-stage seconds."""
    t_all = time.perf_counter()
    t0 = time.perf_counter()
    texts, nbytes = read_texts(paths, max_bytes)
    seconds: Dict[str, float] = {"read": time.perf_counter() - t0}
    if mode == "words":
        sets = word_sets(texts)
        num_types = None
    else:
        t0 = time.perf_counter()
        tok = load_tokenizer(mode)
        table, names = type_table(tok)
        seconds["type_table"] = time.perf_counter() - t0
        sets = bpe_sets(texts, tok, table, batch)
        num_types = len(names)
    seconds.update(sets.seconds)
    t0 = time.perf_counter()
    picks, gains, evaluations = GREEDY[greedy](sets.sets, n)
    seconds["greedy"] = time.perf_counter() - t0
    union: Set[Any] = set()
    for s in sets.sets:
        union |= s
    covered: Set[Any] = set()
    for i in picks:
        covered |= sets.sets[i]
    seconds["total"] = time.perf_counter() - t_all
    return {
        "mode": mode,
        "greedy": greedy,
        "bytes": nbytes,
        "rows": len(texts),
        "candidates": len(sets.sets),
        "skipped_short": sets.skipped,
        "tokens": sets.tokens,
        "typed_tokens": sets.typed_tokens,
        "types_available": len(union),
        "types_covered": len(covered),
        "vocabulary_types": num_types,
        "picked_rows": [sets.rows[i] for i in picks],
        "gains": gains,
        "gain_evaluations": evaluations,
        "seconds": seconds,
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="pure-Python reference ZipCal selection")
    ap.add_argument("paths", nargs="+", help="Parquet files with a 'text' column")
    ap.add_argument("--mode", default="gpt2", help="'words', 'gpt2' or a tokenizer.json path")
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--greedy", choices=sorted(GREEDY), default="lazy")
    ap.add_argument("--max-mb", type=float, default=None, help="use only the first MB of text")
    ap.add_argument("--compare", action="store_true", help="also run zipcal on the same text and report the overlap")
    args = ap.parse_args(argv)
    max_bytes = int(args.max_mb * 1e6) if args.max_mb else None
    res = reference_select(args.paths, args.mode, args.n, greedy=args.greedy, max_bytes=max_bytes)
    if args.compare:
        import pyarrow as pa

        import zipcal

        texts, _ = read_texts(args.paths, max_bytes)
        sel = zipcal.select(pa.table({"text": texts}), n=args.n, tokenizer=args.mode)
        ours = [int(r) for r in sel.indices]
        res["zipcal_rows"] = ours
        res["overlap"] = len(set(ours) & set(res["picked_rows"]))
        res["same_order"] = ours == res["picked_rows"]
    out = dict(res)
    out["picked_rows"] = res["picked_rows"][:16] + (["..."] if len(res["picked_rows"]) > 16 else [])
    out.pop("gains")
    out.pop("zipcal_rows", None)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

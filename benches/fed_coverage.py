"""Fed coverage: distinct types in the calibration rows a compressor receives.

Compares, on the same pools and token budgets (GPT-2 tokenizer, types as zipcal
normalises them):
  - old default: greedy over whole documents' type sets, each document then fed
    truncated to seq_len (one row per document, padded when short);
  - reference: greedy for n documents over their first seq_len tokens, each fed
    truncated (the paper's code);
  - doc prefixes: the same candidates until n full rows (``unit="doc"`` now);
  - new default: greedy over windows until n full rows (``unit="window"``);
  - random: 5 seeds, each filling the new default's token budget.

Usage: python benches/fed_coverage.py [--out benches/results/fed-coverage.md]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

import zipcal
from zipcal import _core
from zipcal.tokenizer import resolve

WIKITEXT = Path(__file__).resolve().parents[2] / "shared" / "data" / "wikitext-2"


def articles(text: str) -> List[str]:
    out: List[List[str]] = []
    for line in text.split("\n"):
        if line.startswith(" = ") and not line.startswith(" = = "):
            out.append([])
        if out:
            out[-1].append(line)
    return ["\n".join(a).strip() for a in out]


def paragraphs(text: str) -> List[str]:
    return [l for l in text.split("\n") if l.strip() and not l.startswith(" = ")]


def fed_types(seg, rows: Sequence[np.ndarray]) -> int:
    table = seg.token_types()
    flat = table[np.concatenate(rows)] if rows else np.zeros(0, dtype=np.uint32)
    return int(len(np.unique(flat[flat != _core.NO_TYPE])))


def n_picks(docs: List[str], n: int, seq_len: int, seg, whole: bool) -> Dict[str, float]:
    """Greedy for n documents, each fed truncated to seq_len: over whole documents'
    type sets (the former default), or over the fed prefixes (the paper's code)."""
    corpus = _core.Corpus(seg, unit="doc", seq_len=0 if whole else seq_len, min_tokens=min(16, seq_len))
    corpus.add_texts(docs, 0)
    order = corpus.greedy(n)[0]
    rows = corpus.rows()
    ids = seg.encode_batch([docs[int(rows[i])] for i in order], False)
    fed = [e[:seq_len] for e in ids]
    return {"types": fed_types(seg, fed), "tokens": int(sum(len(f) for f in fed))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    seg = resolve("gpt2")
    valid = (WIKITEXT / "valid.txt").read_text(encoding="utf-8")
    test = (WIKITEXT / "test.txt").read_text(encoding="utf-8")
    pools = {
        "WikiText-2 valid articles (60)": (articles(valid), 32),
        "WikiText-2 valid paragraphs": (paragraphs(valid), 128),
        "WikiText-2 valid+test paragraphs": (paragraphs(valid) + paragraphs(test), 128),
    }
    lines = [
        "| pool | n | seq_len | old default (tokens) | reference (tokens) | unit=doc (tokens) "
        "| new default (tokens) | random, 5 seeds (tokens) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, (docs, n) in pools.items():
        for seq_len in (128, 512, 2048):
            t0 = time.perf_counter()
            old = n_picks(docs, n, seq_len, seg, whole=True)
            ref = n_picks(docs, n, seq_len, seg, whole=False)
            doc = zipcal.select(docs, n, tokenizer="gpt2", seq_len=seq_len, unit="doc").stats
            new = zipcal.select(docs, n, tokenizer="gpt2", seq_len=seq_len)
            rnd = [zipcal.select(new.pool, n, strategy="random", seed=k).stats for k in range(5)]
            r = [x["types_covered"] for x in rnd]
            lines.append(
                f"| {name} | {n} | {seq_len} | {old['types']:,} ({old['tokens']:,}) | "
                f"{ref['types']:,} ({ref['tokens']:,}) | {doc['types_covered']:,} ({doc['tokens_fed']:,}) | "
                f"{new.stats['types_covered']:,} ({new.stats['tokens_fed']:,}) | "
                f"{min(r):,}–{max(r):,} ({rnd[0]['tokens_fed']:,}) |"
            )
            print(lines[-1], f"  [{time.perf_counter() - t0:.1f}s]", file=sys.stderr)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Digests of the selections a refactor must leave unchanged.

Selects from the benchmark corpus with each configuration below and prints (or
writes) a SHA-256 of every selection's picks (source row, window, tokens, gain, text)
and its stats, so that two checkouts can be compared byte for byte:

    python benches/selection_digest.py --data bench-data/corpus-200M-seed0-v1 --out before.json
    ...change...
    python benches/selection_digest.py --data bench-data/corpus-200M-seed0-v1 --out after.json
    cmp before.json after.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time

import numpy as np

import zipcal

CONFIGS = [
    dict(strategy="zipcal", tokenizer="gpt2", unit="window", seq_len=2048),
    dict(strategy="zipcal", tokenizer="words", unit="doc", seq_len=512),
    dict(strategy="zipcal-zipf", tokenizer="gpt2", unit="window", seq_len=2048, max_candidates=20000),
    dict(strategy="random", tokenizer="gpt2", unit="window", seq_len=2048, seed=3),
]


def digest(sel: "zipcal.Selection") -> str:
    h = hashlib.sha256()
    t = sel.to_arrow()
    for name in ("source", "source_row", "window", "tokens", "gain", "text"):
        h.update(json.dumps(t.column(name).to_pylist(), ensure_ascii=False).encode())
    stats = {k: v for k, v in sel.stats.items() if "seconds" not in k and not k.startswith("time")}
    h.update(json.dumps(stats, sort_keys=True, default=lambda v: np.asarray(v).tolist()).encode())
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    out = {}
    for cfg in CONFIGS:
        key = ",".join(f"{k}={v}" for k, v in cfg.items())
        t0 = time.perf_counter()
        sel = zipcal.select(args.data, args.n, **cfg)
        out[key] = digest(sel)
        print(f"{key}: {out[key][:16]} ({time.perf_counter() - t0:.1f} s)", flush=True)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()

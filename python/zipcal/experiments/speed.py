"""Selection speed: every strategy on the same pool, as a ratio to ZipCal.

The pool (``pool_size`` documents of the mixed offline corpus, tokenized with the
model's tokenizer) is built once; its build time is reported separately as
ZipCal's ingest cost. Each strategy then selects ``n`` samples ``repeats`` times
(the model is loaded beforehand and not counted). Reported: mean and std of the
selection seconds, tokens through the model, and two ratios per strategy: to
ZipCal's selection alone, and to ZipCal's ingest + selection.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..files import atomic_path
from .mixed_corpus import DEFAULT_WIKITEXT_DIR, build_pool
from .quality import MODEL_STRATEGIES, STRATEGIES, QualityConfig, load_base, strategy_options
from .significance import mean_std

log = logging.getLogger(__name__)


def run_speed(
    *,
    strategies: Optional[List[str]] = None,
    n: int = 32,
    seq_len: int = 256,
    pool_size: int = 256,
    repeats: int = 3,
    model: str = "smollm2",
    tiny_model: bool = False,
    wikitext_dir: str = str(DEFAULT_WIKITEXT_DIR),
    batch_size: int = 8,
    device: str = "auto",
    threads: Optional[int] = 2,
    out: Optional[str] = None,
) -> Dict[str, Any]:
    import numpy as np
    import torch

    from ..pool import load_pool
    from ..selection import select

    if threads:
        torch.set_num_threads(threads)
    strategies = list(strategies or STRATEGIES)
    cfg = QualityConfig(
        n=n,
        seq_len=seq_len,
        pool_size=pool_size,
        model=model,
        tiny_model=tiny_model,
        wikitext_dir=wikitext_dir,
        batch_size=batch_size,
        device=device,
        threads=threads,
    )
    mixed = build_pool(wikitext_dir)
    base, tok = load_base(cfg)
    idx = np.sort(
        np.random.default_rng(0).choice(len(mixed.texts), size=min(pool_size, len(mixed.texts)), replace=False)
    )
    texts = [mixed.texts[i] for i in idx]
    t0 = time.perf_counter()
    pool = load_pool(texts, tokenizer=tok, seq_len=seq_len, min_tokens=min(16, seq_len))
    ingest = time.perf_counter() - t0
    res: Dict[str, Any] = {}
    for strategy in strategies:
        times, toks, device_used = [], [], "cpu"
        for r in range(repeats):
            sel = select(pool, n, strategy=strategy, seed=r, **strategy_options(strategy, base, tok, cfg))
            times.append(float(sel.info.get("select_seconds", sel.seconds)))
            toks.append(int(sel.info.get("tokens_through_model", 0)))
            device_used = sel.info.get("device", "cpu")
            log.info("%s repeat %d: %.4fs", strategy, r, times[-1])
        res[strategy] = {
            "select_seconds": mean_std(times),
            "runs": times,
            "tokens_through_model": mean_std(toks),
            "device": device_used,
            "model_based": strategy in MODEL_STRATEGIES,
        }
    z = res.get("zipcal", {}).get("select_seconds", {}).get("mean")
    for _s, r in res.items():
        m = r["select_seconds"]["mean"]
        r["ratio_vs_zipcal_select"] = m / z if z else None
        r["ratio_vs_zipcal_ingest_and_select"] = m / (z + ingest) if z is not None else None
    data = {
        "settings": {
            "n": n,
            "seq_len": seq_len,
            "pool_size": pool_size,
            "pool_candidates": len(pool),
            "repeats": repeats,
            "model": "tiny random Llama" if tiny_model else model,
            "batch_size": batch_size,
            "max_length": seq_len,
        },
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available(),
            "date": _dt.datetime.now().isoformat(timespec="seconds"),
        },
        "zipcal_ingest_seconds": ingest,
        "strategies": res,
    }
    folder = Path(out or Path("benches") / "results" / f"speed-{_dt.date.today().isoformat()}")
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "speed.json") as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    write_markdown(folder / "speed.md", data)
    return data


def write_markdown(path: Path, data: Dict[str, Any]) -> None:
    s = data["settings"]
    lines = [
        "# Selection speed",
        "",
        f"Pool: {s['pool_candidates']} candidates ({s['pool_size']} documents of the mixed offline corpus); "
        f"n = {s['n']}; model-based strategies read the first {s['max_length']} tokens of each candidate "
        f"(self-gen generates {s['max_length']} tokens per sample); model: {s['model']}; "
        f"{s['repeats']} repeats (seeds 0..{s['repeats'] - 1}); model loading not counted.",
        f"Environment: {data['environment']}.",
        f"ZipCal pool ingest (tokenize + type sets): {data['zipcal_ingest_seconds']:.3f} s.",
        "",
        "| strategy | select seconds (mean ± std) | tokens through model | device | ratio vs zipcal select "
        "| ratio vs zipcal ingest + select |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in data["strategies"].items():
        ms = r["select_seconds"]
        a, b = r["ratio_vs_zipcal_select"], r["ratio_vs_zipcal_ingest_and_select"]
        lines.append(
            f"| {name} | {ms['mean']:.4f} ± {ms['std']:.4f} | {r['tokens_through_model']['mean']:.0f} "
            f"| {r['device']} | "
            f"{'–' if a is None else f'{a:.1f}x'} | {'–' if b is None else f'{b:.1f}x'} |"
        )
    lines.append("")
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strategies", default=None, help="comma list (default: all six)")
    p.add_argument("-n", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=256, help="tokens read (and generated) per candidate")
    p.add_argument("--pool-size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--model", default="smollm2")
    p.add_argument("--tiny-model", action="store_true")
    p.add_argument("--wikitext-dir", default=str(DEFAULT_WIKITEXT_DIR))
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None, help="output folder (default benches/results/speed-<date>)")


def cmd_speed(args: argparse.Namespace) -> int:
    strategies = [s.strip() for s in args.strategies.split(",")] if args.strategies else None
    data = run_speed(
        strategies=strategies,
        n=args.n,
        seq_len=args.seq_len,
        pool_size=args.pool_size,
        repeats=args.repeats,
        model=args.model,
        tiny_model=args.tiny_model,
        wikitext_dir=args.wikitext_dir,
        batch_size=args.batch_size,
        device=args.device,
        threads=args.threads,
        out=args.out,
    )
    for name, r in data["strategies"].items():
        ratio = r["ratio_vs_zipcal_select"]
        print(f"{name:14s} {r['select_seconds']['mean']:.4f}s  {'' if ratio is None else f'{ratio:.1f}x zipcal'}")
    return 0

"""zipcal.distributed against single-process zipcal, side by side on one machine.

Builds (or reuses) the benchmark corpus of ``corpus.py``, then times
``zipcal.select`` and ``zipcal.distributed.select`` (Ray Data on a local cluster with
``--cpus`` CPUs, or the cluster at ``--address``) on the same Parquet files, checks
that both pick the same rows, and writes a Markdown table.

On a single machine this measures the overhead of the distributed path (task
scheduling, shipping shards, merging); the gain only comes with more machines.

Usage::

    python benches/bench_distributed.py --size 200M [--modes words,gpt2] [--cpus 2]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus as corpus_mod  # noqa: E402
import numpy as np  # noqa: E402

import zipcal  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="200M")
    ap.add_argument("--modes", default="words,gpt2")
    ap.add_argument("--cpus", type=int, default=os.cpu_count())
    ap.add_argument("--address", default=None, help="an existing Ray cluster (default: start a local one)")
    ap.add_argument("--unit-bytes", default="64M", help="work unit size (default 64M)")
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import ray

    import zipcal.distributed as zd
    from zipcal.selection import parse_size

    files = corpus_mod.build_corpus(corpus_mod.parse_size(args.size), 0)["paths"]
    size = sum(os.path.getsize(f) for f in files)
    t0 = time.perf_counter()
    if args.address:
        ray.init(address=args.address, log_to_driver=False)
    else:
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    ray_start = time.perf_counter() - t0
    rows = []
    for mode in args.modes.split(","):
        t0 = time.perf_counter()
        local = zipcal.select(files, args.n, tokenizer=mode, keep_texts=False)
        t_local = time.perf_counter() - t0
        t0 = time.perf_counter()
        dist = zd.select(files, args.n, tokenizer=mode, unit_bytes=parse_size(args.unit_bytes), cpus_per_task=1)
        t_dist = time.perf_counter() - t0
        same = bool(np.array_equal(local.indices, dist.indices))
        text_bytes = local.pool.report["bytes"]
        rows.append((mode, text_bytes, t_local, t_dist, dist.pool.distributed["tasks"], same))
        print(f"{mode}: local {t_local:.1f}s, Ray {t_dist:.1f}s, same selection: {same}", file=sys.stderr)
    ray.shutdown()
    lines = [
        f"Measured {_dt.date.today().isoformat()} on {platform.machine()}, {os.cpu_count()} CPUs; "
        f"Ray {ray.__version__} with {args.cpus if not args.address else 'the given'} CPUs "
        f"(cluster start {ray_start:.1f} s, not included). "
        f"Corpus: {size / 1e6:.0f} MB of Parquet in {len(files)} files. "
        f"Command: `python benches/bench_distributed.py --size {args.size} --cpus {args.cpus}`.",
        "",
        "| mode | text | zipcal.select | zipcal.distributed.select | tasks | distributed / local time "
        "| same selection |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for mode, nbytes, tl, td, tasks, same in rows:
        lines.append(
            f"| {mode} | {nbytes / 1e6:.0f} MB | {tl:.1f} s ({nbytes / 1e6 / tl:.0f} MB/s) | "
            f"{td:.1f} s ({nbytes / 1e6 / td:.0f} MB/s) | {tasks} | {td / tl:.2f}x | {'yes' if same else 'NO'} |"
        )
    text = "\n".join(lines) + "\n"
    out = Path(args.out or Path(__file__).parent / "results" / f"distributed-{args.size}.md")
    out.write_text(text, encoding="utf-8")
    print(text)
    return 0 if all(r[-1] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Two builds of zipcal, timed in alternating fresh processes on the same corpus.

Each build is a folder put first on ``PYTHONPATH`` (an installed wheel, e.g.
``pip install --no-deps --target /tmp/old dist/zipcal-*.whl``) or ``-`` for the
zipcal the interpreter imports. Every run is a fresh process that imports zipcal
before its timer and then times one ``zipcal.select(paths, n, tokenizer=mode, **kw)``
(reading the Parquet shards included). Runs alternate A, B, A, B, ... so that a
change in the machine's load hits both builds alike. Reports the median and range
of wall and CPU seconds, the throughput, and the ratio B / A of the medians.

Usage::

    python benches/bench_ab.py --a /tmp/old --a-args '{"unit": "doc"}' --b - \\
        --size 200M --modes words,gpt2 --runs 6 --out benches/results/ab.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import corpus as corpus_mod  # noqa: E402

WORKER = r"""
import json, os, sys, time, resource
spec = json.loads(sys.argv[1])
import zipcal
select = zipcal.select
c0 = time.process_time(); t0 = time.perf_counter()
sel = select(spec["paths"], n=spec["n"], tokenizer=spec["mode"], **spec["kw"])
wall = time.perf_counter() - t0; cpu = time.process_time() - c0
print(json.dumps({"wall": wall, "cpu": cpu, "version": getattr(zipcal, "__version__", "?"),
    "file": zipcal.__file__, "bytes": int(sel.pool.report["bytes"]), "candidates": len(sel.pool),
    "picked": [int(r) for r in sel.indices][:8],
    "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(build: str, spec: Dict[str, Any]) -> Dict[str, Any]:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    if build != "-":
        env["PYTHONPATH"] = build + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(
        [sys.executable, "-c", WORKER, json.dumps(spec)], env=env, check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", required=True, help="build A: a folder for PYTHONPATH, or - for the installed zipcal")
    ap.add_argument("--b", required=True, help="build B: as --a")
    ap.add_argument("--a-args", default="{}", help="JSON keyword arguments of select() for A")
    ap.add_argument("--b-args", default="{}", help="JSON keyword arguments of select() for B")
    ap.add_argument("--size", default="200M")
    ap.add_argument("--modes", default="words,gpt2")
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--runs", type=int, default=6, help="runs of each build per mode")
    ap.add_argument("--out", default=None, help="Markdown report (and .json beside it)")
    args = ap.parse_args(argv)
    manifest = corpus_mod.build_corpus(corpus_mod.parse_size(args.size))
    paths = manifest["paths"]
    builds = {"A": (args.a, json.loads(args.a_args)), "B": (args.b, json.loads(args.b_args))}
    results: Dict[str, Dict[str, List[Dict[str, Any]]]] = {}
    for mode in args.modes.split(","):
        results[mode] = {"A": [], "B": []}
        for k in range(args.runs):
            for name in ("A", "B") if k % 2 == 0 else ("B", "A"):
                folder, kw = builds[name]
                r = run(folder, {"paths": paths, "n": args.n, "mode": mode, "kw": kw})
                results[mode][name].append(r)
                print(
                    f"[ab {time.strftime('%H:%M:%S')}] {mode} {name} run {k}: {r['wall']:.3f} s wall, "
                    f"{r['cpu']:.2f} s CPU",
                    file=sys.stderr,
                    flush=True,
                )
    lines = [
        f"A/B selection timing, {args.size} corpus ({len(paths)} Parquet shards), n = {args.n}, "
        f"{args.runs} alternating runs each, fresh processes; {os.cpu_count()} CPUs.",
        f"A: `{args.a}` {args.a_args}; B: `{args.b}` {args.b_args}.",
        "",
        "| mode | build | wall median (range) | MB/s | CPU s median | peak RSS | B / A throughput |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for mode, by in results.items():
        med = {k: statistics.median(r["wall"] for r in v) for k, v in by.items()}
        for name, runs in by.items():
            walls = [r["wall"] for r in runs]
            mb = runs[0]["bytes"] / 1e6 / med[name]
            ratio = f"{med['A'] / med['B']:.3f}" if name == "B" else "–"
            lines.append(
                f"| {mode} | {name} | {med[name]:.3f} s ({min(walls):.3f}–{max(walls):.3f}) | {mb:.1f} | "
                f"{statistics.median(r['cpu'] for r in runs):.2f} | "
                f"{max(r['rss_mib'] for r in runs):.0f} MiB | {ratio} |"
            )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
        Path(args.out).with_suffix(".json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

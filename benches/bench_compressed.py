"""Selection from compressed JSON-lines shards against the decompressor alone.

From the benchmark corpus (``benches/corpus.py``) it writes one JSON-lines file per
Parquet shard and compresses each with the command-line tools (``gzip -6``,
``zstd -3``), then times, in alternating fresh processes, for each codec:

- the decompressor alone: ``zcat FILES > /dev/null`` / ``zstd -dcq FILES > /dev/null``
  (the physical floor: the bytes must be decompressed once whatever reads them);
- ``zipcal.select(FILES, n=128, tokenizer=mode)`` end to end (zipcal imported before
  the timer);
- both on the same JSON lines uncompressed (``cat`` as the reader), which shows what
  compression adds to a selection.

Reports medians and the ratio zipcal / decompressor. Usage::

    python benches/bench_compressed.py --size 200M --runs 5 --out benches/results/compressed-200M.md
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
from typing import Dict, List

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import corpus as corpus_mod  # noqa: E402

WORKER = r"""
import json, sys, time
spec = json.loads(sys.argv[1])
import zipcal
select = zipcal.select
t0 = time.perf_counter()
sel = select(spec["paths"], n=128, tokenizer=spec["mode"])
print(json.dumps({"wall": time.perf_counter() - t0, "rows": int(sel.pool.report["rows"])}))
"""

CODECS = {
    "gzip": (".json.gz", ["gzip", "-6", "-c"], ["zcat"]),
    "zstd": (".jsonl.zst", ["zstd", "-3", "-q", "-c"], ["zstd", "-dcq"]),
}
# The same JSON lines uncompressed, read with `cat`: what compression adds to a selection.
PLAIN = ("plain", ".jsonl", ["cat"])


def build(size: str) -> Dict[str, List[str]]:
    import pyarrow.parquet as pq

    manifest = corpus_mod.build_corpus(corpus_mod.parse_size(size))
    folder = Path(manifest["paths"][0]).parent / "compressed"
    folder.mkdir(exist_ok=True)
    out: Dict[str, List[str]] = {c: [] for c in [*CODECS, PLAIN[0]]}
    for shard in manifest["paths"]:
        stem = Path(shard).stem
        plain = folder / f"{stem}.jsonl"
        if not all((folder / (stem + ext)).is_file() for ext, _, _ in CODECS.values()) or not plain.is_file():
            texts = pq.read_table(shard, columns=["text"]).column("text").to_pylist()
            with open(plain, "w", encoding="utf-8") as f:
                for t in texts:
                    f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
            for ext, cmd, _ in CODECS.values():
                with open(folder / (stem + ext), "wb") as f:
                    subprocess.run(cmd + [str(plain)], stdout=f, check=True)
        for codec, (ext, _, _) in CODECS.items():
            out[codec].append(str(folder / (stem + ext)))
        out[PLAIN[0]].append(str(plain))
    return out


def timed(cmd: List[str], env=None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True, env=env)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="200M")
    ap.add_argument("--modes", default="words,gpt2")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    files = build(args.size)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    rows = []
    for codec, paths in files.items():
        size = sum(os.path.getsize(p) for p in paths)
        dec: List[float] = []
        sel: Dict[str, List[float]] = {m: [] for m in args.modes.split(",")}
        for k in range(args.runs):
            dec.append(timed((CODECS[codec][2] if codec in CODECS else PLAIN[2]) + paths))
            for mode in sel:
                time.perf_counter()
                r = subprocess.run(
                    [sys.executable, "-c", WORKER, json.dumps({"paths": paths, "mode": mode})],
                    capture_output=True,
                    text=True,
                    check=True,
                    env=env,
                )
                sel[mode].append(json.loads(r.stdout.strip().splitlines()[-1])["wall"])
            print(
                f"[compressed] {codec} run {k}: decompress {dec[-1]:.2f} s, "
                + ", ".join(f"{m} {v[-1]:.2f} s" for m, v in sel.items()),
                file=sys.stderr,
                flush=True,
            )
        d = statistics.median(dec)
        rows.append(
            f"| {codec} | {size / 1e6:.0f} MB | {d:.2f} s | "
            + " | ".join(f"{statistics.median(v):.2f} s ({statistics.median(v) / d:.2f}x)" for v in sel.values())
            + " |"
        )
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    text = (
        "\n".join(
            [
                f"Selection (n = 128) from compressed JSON-lines shards of the {args.size} benchmark corpus "
                "against the "
                f"decompressor alone on the same files; median of {args.runs} alternating runs, fresh processes; "
                f"{cpu}, {os.cpu_count()} CPUs.",
                "",
                "| codec | size | decompressor alone (`cat` for plain) | "
                + " | ".join(f"zipcal {m} (ratio)" for m in args.modes.split(","))
                + " |",
                "|---|---:|---:|" + "---:|" * len(args.modes.split(",")),
                *rows,
            ]
        )
        + "\n"
    )
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

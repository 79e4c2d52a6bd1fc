"""Write the benchmark table of docs/performance.md from the JSON results of bench_selection.py.

    python benches/readme_table.py benches/results/selection-200M.json \
        [--scaling benches/results/scaling-100M-200M-500M-1G.json] [--readme docs/performance.md]

Replaces the block between <!-- BENCH-TABLE --> and <!-- /BENCH-TABLE -->.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
from typing import Any, Dict, List, Optional


def _mb(n: float) -> str:
    return f"{n / 1e6:.0f} MB" if n < 1e9 else f"{n / 1e9:.1f} GB"


def _selection_table(d: Dict[str, Any]) -> List[str]:
    env, res = d["environment"], d["results"]
    hw = env["hardware"]
    lines = [
        f"Measured {env['date'][:10]} on {hw['cpu']}, {hw['usable_cpus']} CPUs, "
        f"{hw['ram_bytes'] / 2**30:.0f} GiB RAM (load average at start {hw['loadavg'][0]:.1f}); "
        f"zipcal {env['versions']['zipcal']} ({env['versions']['git']}), tokenizers {env['versions']['tokenizers']}.",
        f"Corpus: {_mb(res['corpus']['bytes'])} of text in {res['corpus']['rows']:,} documents "
        f"(`benches/corpus.py`), n = {res['n']}. Command: `{env['command']}`.",
        "",
        "| mode | zipcal end to end | Mtokens/s | peak RSS | Python reference (same bytes) "
        "| zipcal / reference | `encode_batch` alone | zipcal / encode_batch |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for mode in res["modes"]:
        z = res["zipcal"][mode]
        zs = res["zipcal_sample"].get(mode) if res.get("zipcal_sample") else None
        ref = res["reference"].get(mode) if res.get("reference") else None
        mbps = z["bytes"] / z["seconds"] / 1e6
        mtok = z["pool_tokens"] / z["seconds"] / 1e6
        rss = z.get("peak_rss")
        ref_mbps = ref["bytes"] / ref["seconds"] / 1e6 if ref else None
        same = (ref["seconds"] / zs["seconds"]) if (ref and zs) else None
        enc = res.get("encode") if res.get("encode", {}).get("mode") == mode else None
        enc_mbps = enc["bytes"] / enc["seconds"] / 1e6 if enc else None
        enc_ratio = (enc["seconds"] / zs["seconds"]) if (enc and zs) else None
        lines.append(
            f"| {mode} | {mbps:.1f} MB/s ({z['seconds']:.1f} s) | {mtok:.2f} | "
            f"{(rss or 0) / 2**20:.0f} MiB | {ref_mbps:.1f} MB/s | {same:.1f}x | "
            + (f"{enc_mbps:.1f} MB/s | {enc_ratio:.1f}x |" if enc else "– | – |")
            if ref
            else f"| {mode} | {mbps:.1f} MB/s | {mtok:.2f} | {(rss or 0) / 2**20:.0f} MiB | – | – | – | – |"
        )
    lines += [
        "",
        "Ratios compare the same bytes (the reference's sample) in the same run. The reference is a "
        "straightforward Python ZipCal (`benches/reference.py`: `tokenizers.encode_batch` or a `\\w+` "
        "split, Python sets, lazy greedy); in gpt2 mode it picks the same documents in the same order.",
    ]
    return lines


def _scaling_table(d: Dict[str, Any]) -> List[str]:
    res = d["results"]
    lines = [
        "",
        f"Scaling (`{d['environment']['command']}`; each size in a fresh process):",
        "",
        "| size | mode | seconds | MB/s | peak RSS |",
        "|---:|---|---:|---:|---:|",
    ]
    for r in res["runs"]:
        if r.get("seconds") is None:
            continue
        lines.append(
            f"| {_mb(r['size'])} | {r['mode']} | {r['seconds']:.1f} | {r['bytes'] / r['seconds'] / 1e6:.1f} | "
            f"{(r.get('peak_rss') or 0) / 2**20:.0f} MiB |"
        )
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("selection")
    ap.add_argument("--scaling", default=None)
    ap.add_argument("--readme", default="docs/performance.md")
    args = ap.parse_args(argv)
    with open(args.selection, encoding="utf-8") as f:
        lines = _selection_table(json.load(f))
    if args.scaling:
        with open(args.scaling, encoding="utf-8") as f:
            lines += _scaling_table(json.load(f))
    with open(args.readme, encoding="utf-8") as f:
        readme = f.read()
    block = "<!-- BENCH-TABLE -->\n" + "\n".join(lines) + "\n<!-- /BENCH-TABLE -->"
    new, count = re.subn(r"<!-- BENCH-TABLE -->.*?<!-- /BENCH-TABLE -->", lambda _: block, readme, flags=re.S)
    if count != 1:
        raise SystemExit(f"{args.readme}: no BENCH-TABLE markers")
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(args.readme)), suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(new)
    os.replace(tmp, args.readme)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""bfloat16 against float32 on this CPU: a matmul of the shape the quality grid's
model runs (8192 x 576 x 1536), and a SmolLM2-135M forward pass over the evaluation
batch (8 x 512 tokens), each timed alternately, median of ``--runs``.

    python benches/bench_bf16.py --runs 5 [--out benches/results/bf16-<cpu>.md]

bfloat16 pays off where the CPU multiplies it natively (AVX512-BF16, AMX on recent
Xeons); elsewhere PyTorch converts and the float32 path is faster. The report names
the CPU and its flags, so a reading is tied to the machine it came from."""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path


def cpu_facts() -> dict:
    name, flags = platform.processor() or "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not name:
                name = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    return {"cpu": name, "avx512_bf16": "avx512_bf16" in flags, "amx_bf16": "amx_bf16" in flags}


def timed(fn, runs: int) -> list:
    fn()  # warm-up
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    facts = cpu_facts()
    rows = []
    a32, b32 = torch.randn(8192, 576), torch.randn(576, 1536)
    a16, b16 = a32.bfloat16(), b32.bfloat16()
    t32, t16 = [], []
    for _ in range(args.runs):  # alternate, so drifting load hits both alike
        t32 += timed(lambda: a32 @ b32, 1)
        t16 += timed(lambda: a16 @ b16, 1)
    rows.append(("matmul 8192x576x1536", statistics.median(t32), statistics.median(t16)))
    if rows[0][2] > 2 * rows[0][1]:
        # No native bf16 here: a forward pass would take minutes and show the same.
        report(args, facts, rows, None, torch.__version__)
        return

    from zipcal.models import load_smollm2

    model, _ = load_smollm2()
    model.eval()
    ids = torch.randint(0, model.config.vocab_size, (8, 512))
    f32, f16 = [], []
    import copy

    m16 = copy.deepcopy(model).to(torch.bfloat16)
    with torch.inference_mode():
        for _ in range(args.runs):
            f32 += timed(lambda: model(ids), 1)
            f16 += timed(lambda: m16(ids), 1)
        logits32, logits16 = model(ids[:1]).logits.float(), m16(ids[:1]).logits.float()
    rows.append(("SmolLM2-135M forward, 8 x 512 tokens", statistics.median(f32), statistics.median(f16)))
    drift = float((logits16 - logits32).abs().max())
    report(args, facts, rows, drift, torch.__version__)


def report(args, facts, rows, drift, torch_version) -> None:
    lines = [
        "# bfloat16 against float32 on CPU",
        "",
        f"CPU: {facts['cpu']} (avx512_bf16: {facts['avx512_bf16']}, amx_bf16: {facts['amx_bf16']}), "
        f"{args.threads} threads, torch {torch_version}; median of {args.runs} alternating runs.",
        "",
        "| work | float32 s | bfloat16 s | bf16 speed-up |",
        "|---|---|---|---|",
        *(f"| {w} | {a:.4f} | {b:.4f} | {a / b:.3f}x |" for w, a, b in rows),
        "",
    ]
    if drift is None:
        lines += [
            "bf16 matmuls are emulated on this CPU (more than 2x slower than fp32): the model",
            "forward pass was not timed, and the quality grid runs in float32 here.",
            "",
        ]
    else:
        lines += [f"Largest logit difference bf16 vs fp32 on one 512-token row: {drift:.3f}.", ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()

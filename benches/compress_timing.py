"""Per-layer timing of Wanda / SparseGPT / GPTQ on SmolLM2-135M.

Times, for each method and each device (CPU, and CUDA when available), the
statistics pass, the weight update and the output pass of every decoder layer,
and prints a table plus a JSON record (with the hardware) for the docs.

    python benches/compress_timing.py --layers 4 --nsamples 16 --seq-len 512
    python benches/compress_timing.py --devices cpu cuda --json timing.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

import torch  # noqa: E402

from zipcal.compress import hooks  # noqa: E402
from zipcal.compress import kernels as K  # noqa: E402
from zipcal.models import load_smollm2  # noqa: E402


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _calibration(tok: Any, n: int, seq_len: int) -> torch.Tensor:
    wt = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "wikitext-2" / "valid.txt"
    if wt.is_file():
        text = wt.read_text(encoding="utf-8")
    else:  # fall back to text every Python has
        import pydoc_data.topics

        text = "\n\n".join(pydoc_data.topics.topics.values())
    ids = tok(text, return_tensors="pt")["input_ids"][0]
    g = torch.Generator().manual_seed(0)
    starts = torch.randint(0, ids.numel() - seq_len, (n,), generator=g).tolist()
    return torch.stack([ids[s : s + seq_len] for s in starts])


def time_method(
    model: Any, ids: torch.Tensor, method: str, dev: torch.device, n_layers: int, batch_size: int
) -> List[Dict[str, float]]:
    path, layers = hooks.find_decoder_layers(model)
    batches = hooks.capture_layer_inputs(model, path, layers, ids, torch.ones_like(ids), dev, batch_size)
    acc = K.accumulate_sq_norms if method == "wanda" else K.accumulate_hessian
    fin = K.finalize_sq_norms if method == "wanda" else K.finalize_hessian
    rows = []
    with torch.no_grad():
        for idx in range(min(n_layers, len(layers))):
            layer = layers[idx].to(dev)
            lin = hooks.find_linears(layer)
            _sync(dev)
            t0 = time.perf_counter()
            with hooks.InputStats(lin, acc) as st:
                for b in batches:
                    st.token_mask = b.token_mask
                    hooks.run_layer(layer, b)
            stats = {name: fin(s, c) for name, s, c in st.items()}
            _sync(dev)
            t1 = time.perf_counter()
            for name, mod in lin.items():
                w = hooks.get_weight(mod)
                if method == "wanda":
                    new = K.prune_wanda(w, stats[name], 0.5)[0]
                elif method == "sparsegpt":
                    new = K.prune_sparsegpt(w, stats[name], 0.5)[0]
                else:
                    new = K.quantize_gptq(w, stats[name], 4, 128)[0]
                hooks.set_weight(mod, new)
            _sync(dev)
            t2 = time.perf_counter()
            for b in batches:
                b.hidden = hooks.run_layer(layer, b)
            _sync(dev)
            t3 = time.perf_counter()
            layers[idx].to("cpu")
            rows.append({"layer": idx, "stats_s": t1 - t0, "update_s": t2 - t1, "forward_s": t3 - t2})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", nargs="+", default=["wanda", "sparsegpt", "gptq"])
    ap.add_argument("--devices", nargs="+", default=None, help="default: cpu, plus cuda when available")
    ap.add_argument("--layers", type=int, default=4, help="time the first N decoder layers (default 4)")
    ap.add_argument("--nsamples", type=int, default=16)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    model, tok = load_smollm2()
    ids = _calibration(tok, args.nsamples, args.seq_len)
    record: Dict[str, Any] = {
        "model": "SmolLM2-135M-Instruct (float32)",
        "tokens": int(ids.numel()),
        "nsamples": args.nsamples,
        "seq_len": args.seq_len,
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "results": {},
    }
    print(f"{'device':<6} {'method':<10} {'stats s/layer':>14} {'update s/layer':>15} {'forward s/layer':>16}")
    for dev_name in devices:
        dev = torch.device(dev_name)
        for method in args.methods:
            rows = time_method(model, ids, method, dev, args.layers, args.batch_size)
            n = len(rows)
            mean = {k: sum(r[k] for r in rows) / n for k in ("stats_s", "update_s", "forward_s")}
            record["results"][f"{dev_name}/{method}"] = {"per_layer": rows, "mean": mean}
            print(
                f"{dev_name:<6} {method:<10} {mean['stats_s']:>14.3f} {mean['update_s']:>15.3f} "
                f"{mean['forward_s']:>16.3f}"
            )
            # restore the dense weights for the next method
            model, tok = load_smollm2()
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``zipcal compress`` and ``zipcal eval`` subcommands.

This module imports neither torch nor transformers at import time, so the main
CLI works without them; the handlers import them when run.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Dict

EXIT_OK = 0
EXIT_BAD_INPUT = 2

PRUNE = ("magnitude", "wanda", "sparsegpt")
QUANT = ("rtn", "gptq")


def _err(cmd: str, msg: str) -> int:
    print(f"zipcal {cmd}: error: {msg}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _user_errors() -> tuple:
    """Exception types that mean bad input (reported in one line, exit code 2)."""
    from zipcal.errors import ZipcalError

    return (ZipcalError, FileNotFoundError)


def _guard(cmd: str, fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401
        except ImportError as exc:
            return _err(cmd, f"needs PyTorch and transformers ({exc.name} is missing): pip install 'zipcal[torch]'")
        try:
            return fn(args)
        except _user_errors() as exc:
            return _err(cmd, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)

    return handler


def _setup_torch(args: argparse.Namespace) -> None:
    import torch

    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)


def _compress(args: argparse.Namespace) -> int:
    from zipcal.compress.calib import check_tokenizer_fits
    from zipcal.compress.checkpoints import check_output_dir, save_compressed
    from zipcal.compress.pipeline import format_gaps, format_sparsity_report, prune, quantize
    from zipcal.models import load_model

    _setup_torch(args)
    method = args.method
    needs_calib = method in ("wanda", "sparsegpt", "gptq")
    if needs_calib and not args.calib:
        return _err("compress", f"--method {method} needs --calib FILE (.parquet or .jsonl with a 'text' column)")
    check_output_dir(args.output, args.overwrite)  # fail before the slow part
    model, tokenizer = load_model(args.model, dtype=args.dtype)
    check_tokenizer_fits(tokenizer, model)
    common: Dict[str, Any] = dict(
        tokenizer=tokenizer,
        seq_len=args.seq_len,
        n=args.nsamples,
        device=args.device,
        batch_size=args.batch_size,
        blocksize=args.blocksize,
        percdamp=args.damp,
        progress=not args.quiet,
        experts=args.experts,
    )
    if method in PRUNE:
        report = prune(
            model,
            args.calib,
            method=method,
            sparsity=args.sparsity,
            structure=args.structure,
            owl=args.owl,
            owl_m=args.owl_m,
            owl_lambda=args.owl_lambda,
            **common,
        )
        save_compressed(model, args.output, tokenizer, report, overwrite=args.overwrite)
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            print(format_sparsity_report(report))
            print(f"saved to {args.output}")
    else:
        meta = quantize(
            model,
            args.calib,
            method=method,
            bits=args.bits,
            group_size=args.group_size if args.group_size and args.group_size > 0 else None,
            act_order=args.actorder or "none",
            static_groups=True if args.static_groups else None,
            symmetric=args.symmetric,
            **common,
        )
        save_compressed(model, args.output, tokenizer, meta, overwrite=args.overwrite)
        if args.json:
            print(json.dumps(meta, indent=2))
        else:
            mse = [v["weight_mse"] for v in meta["layers"].values()]
            print(
                f"{method} {meta['bits']}-bit group {meta['group_size']}: {len(mse)} linear layers, "
                f"mean weight MSE {sum(mse) / max(len(mse), 1):.3e}"
            )
            for line in format_gaps(meta):
                print(line)
            print(f"saved to {args.output}")
    return EXIT_OK


def _eval(args: argparse.Namespace) -> int:
    from zipcal.compress.calib import check_tokenizer_fits
    from zipcal.eval import multiple_choice, perplexity_stats
    from zipcal.models import load_model

    _setup_torch(args)
    if not args.ppl and not args.tasks:
        return _err("eval", "nothing to evaluate: pass --ppl TEXT_FILE and/or --tasks TASKS.jsonl")
    model, tokenizer = load_model(args.model, dtype=args.dtype)
    check_tokenizer_fits(tokenizer, model)
    device = args.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    results: Dict[str, Any] = {"model": str(args.model)}
    if args.ppl:
        results["perplexity"] = perplexity_stats(
            model,
            tokenizer,
            args.ppl,
            seq_len=args.seq_len,
            max_windows=args.max_windows,
            batch_size=args.batch_size,
            progress=not args.quiet,
        )
    if args.tasks:
        results["multiple_choice"] = multiple_choice(model, tokenizer, args.tasks, limit=args.limit)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        if "perplexity" in results:
            p = results["perplexity"]
            print(f"perplexity {p['ppl']:.4f} ({p['windows']} windows x {p['seq_len']} tokens)")
        if "multiple_choice" in results:
            r = results["multiple_choice"]
            print(f"multiple choice: acc {r['acc']:.4f} acc_norm {r['acc_norm']:.4f} (n={r['n']})")
    return EXIT_OK


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add the ``compress`` and ``eval`` subcommands to an argparse subparsers object."""
    c = subparsers.add_parser(
        "compress",
        help="prune or quantize a local Hugging Face causal LM with calibration data",
        description="Prune (magnitude, Wanda, SparseGPT, optionally OWL) or fake-quantize (RTN, GPTQ) "
        "a local Hugging Face causal LM layer by layer; writes a Hugging Face folder.",
    )
    c.add_argument(
        "model",
        help="local model folder, Hugging Face hub name (org/name[@revision], from the Hugging Face cache, "
        "downloaded if missing) or 'smollm2' for the bundled offline model",
    )
    c.add_argument("--method", required=True, choices=PRUNE + QUANT)
    c.add_argument("--calib", help=".parquet / .jsonl with a 'text' column (e.g. from `zipcal select`)")
    c.add_argument("-o", "--output", required=True, help="output folder (written atomically)")
    c.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    g = c.add_argument_group("pruning")
    g.add_argument("--sparsity", type=float, default=0.5, help="fraction of weights removed (default 0.5)")
    g.add_argument("--structure", default=None, help="N:M semi-structured pattern, e.g. 2:4 or 4:8")
    g.add_argument("--owl", action="store_true", help="OWL outlier-weighted layer-wise sparsity")
    g.add_argument("--owl-m", type=float, default=5.0, help="OWL outlier threshold multiplier (default 5)")
    g.add_argument("--owl-lambda", type=float, default=0.08, help="OWL sparsity spread (default 0.08)")
    q = c.add_argument_group("quantization")
    q.add_argument("--bits", type=int, default=4, help="2..8 (default 4)")
    q.add_argument("--group-size", type=int, default=128, help="columns per scale; -1 per row (default 128)")
    q.add_argument(
        "--actorder",
        choices=("none", "group", "static", "weight"),
        default=None,
        help="GPTQ column order: none (left to right, default), group (decreasing activation, groups "
        "formed in that order), static (decreasing activation, group scales fixed up front from the "
        "original weights: llm-compressor's default; 'weight' is an alias)",
    )
    q.add_argument(
        "--act-order", dest="actorder", action="store_const", const="group", help="alias for --actorder group"
    )
    q.add_argument(
        "--static-groups",
        action="store_true",
        help="GPTQ: compute group scales up front from the original weights (implied by --actorder static; "
        "with --actorder none this is llm-compressor's actorder=None)",
    )
    q.add_argument("--symmetric", action="store_true", help="symmetric grid (default asymmetric)")
    r = c.add_argument_group("calibration and runtime")
    r.add_argument("--seq-len", type=int, default=2048, help="truncate calibration texts (default 2048)")
    r.add_argument("--nsamples", type=int, default=None, help="use the first N calibration texts")
    r.add_argument("--batch-size", type=int, default=8)
    r.add_argument("--blocksize", type=int, default=128, help="SparseGPT/GPTQ column block (default 128)")
    r.add_argument("--damp", type=float, default=0.01, help="Hessian dampening, fraction of mean diagonal")
    r.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1...")
    r.add_argument(
        "--experts",
        choices=("routed", "all"),
        default="routed",
        help="MoE models: statistics of each expert from the tokens routed to it (default) or from every token",
    )
    r.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    r.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    r.add_argument("--json", action="store_true", help="print the full report as JSON")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    c.set_defaults(func=_guard("compress", _compress))

    e = subparsers.add_parser(
        "eval",
        help="perplexity / zero-shot multiple-choice accuracy of a local causal LM",
        description="WikiText-2-style perplexity (non-overlapping windows) and log-likelihood "
        "multiple-choice accuracy.",
    )
    e.add_argument("model", help="local model folder, Hugging Face hub name (org/name[@revision]) or 'smollm2'")
    e.add_argument("--ppl", help="text file (read whole) or .parquet/.jsonl 'text' column joined with blank lines")
    e.add_argument("--seq-len", type=int, default=2048, help="window length (default 2048)")
    e.add_argument("--max-windows", type=int, default=None, help="evaluate only the first N windows")
    e.add_argument("--tasks", help='JSONL multiple-choice tasks: {"context", "choices", "label"} per line')
    e.add_argument("--limit", type=int, default=None, help="first N multiple-choice items")
    e.add_argument("--batch-size", type=int, default=1)
    e.add_argument("--device", default="auto")
    e.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    e.add_argument("--threads", type=int, default=None)
    e.add_argument("--json", action="store_true")
    e.add_argument("-q", "--quiet", action="store_true")
    e.set_defaults(func=_guard("eval", _eval))
    from .. import moe

    moe.register(subparsers)  # `zipcal experts`


def main(argv: Any = None) -> int:
    """Stand-alone entry point (``python -m zipcal.compress.commands``)."""
    parser = argparse.ArgumentParser(prog="zipcal")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

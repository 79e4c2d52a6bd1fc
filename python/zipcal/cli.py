"""The ``zipcal`` command line.

    zipcal select [INPUT ...] -n 128 --seq-len 2048 --tokenizer tokenizer.json -o calib.parquet
    zipcal select                     # the embedded default corpus, explained
    zipcal select --verify calib.parquet.manifest.json
    zipcal stats INPUT ... [--plot rank_frequency.png]
    zipcal strategies
    zipcal compress / zipcal eval     # with zipcal[torch]

Exit codes: 0 success, 1 ``select --verify`` found a difference, 2 bad input or
arguments (one-line message), 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import textwrap
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from . import __version__
from .errors import ZipcalError

log = logging.getLogger("zipcal")


def _common_input_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="Parquet / Arrow / JSONL / text files, globs or folders (none: the embedded default corpus)",
    )
    p.add_argument(
        "--tokenizer",
        default="words",
        help="'words' (default), 'gpt2', a tokenizer.json (or its folder), or a Hugging Face hub name "
        "(org/name[@revision]: its tokenizer.json from the Hugging Face cache, downloaded if missing)",
    )
    p.add_argument(
        "--text-column",
        default="text",
        help="text column of tabular inputs (default: text; without one, a chat column 'messages')",
    )
    p.add_argument(
        "--chat-template",
        default=None,
        metavar="MODEL",
        help="render a chat 'messages' column (role/content lists) with this model's chat template: a model "
        "or tokenizer folder, or a hub name (default: the --tokenizer folder's own template)",
    )
    p.add_argument(
        "--text-split",
        choices=["auto", "line", "blank"],
        default="auto",
        help="plain text: one document per line or per blank-line-separated paragraph",
    )
    p.add_argument(
        "--encoding-errors",
        choices=["strict", "replace"],
        default="strict",
        help="invalid UTF-8 in text files: fail (default) or replace and count",
    )
    p.add_argument(
        "--unit",
        choices=["window", "doc"],
        default="window",
        help="candidates: every seq-len-token window of every document (default), "
        "or each document's first seq-len tokens",
    )
    p.add_argument("--seq-len", type=int, default=2048, help="tokens per calibration row (default 2048)")
    p.add_argument("--min-tokens", type=int, default=None, help="skip candidates shorter than this (default 16)")
    p.add_argument("--threads", type=int, default=None, help="worker threads (default: ZIPCAL_NUM_THREADS or all CPUs)")
    p.add_argument(
        "--max-candidates",
        type=int,
        default=None,
        help="bounded memory: keep only this many candidates (largest type sets)",
    )
    p.add_argument(
        "--max-memory", default=None, help="bounded memory: approximate budget for candidates and their texts, e.g. 2G"
    )
    p.add_argument(
        "--keep-texts",
        choices=["auto", "yes", "no"],
        default="auto",
        help="keep texts in memory, or re-read the selected rows from the files (auto: keep below 256 MiB of input)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summaries on stderr")


def _pool_options(args: argparse.Namespace) -> Any:
    from .pool import PoolOptions

    return PoolOptions(
        tokenizer=args.tokenizer,
        unit=args.unit,
        seq_len=args.seq_len,
        min_tokens=args.min_tokens,
        text_column=args.text_column,
        text_split=args.text_split,
        encoding_errors=args.encoding_errors,
        chat_template=args.chat_template,
    )


def _local_pool(source: Any, args: argparse.Namespace) -> Any:
    from .pool import build_pool

    keep: Dict[str, Union[bool, str]] = {"auto": "auto", "yes": True, "no": False}
    return build_pool(
        source,
        _pool_options(args),
        threads=args.threads,
        progress=not args.quiet,
        max_candidates=args.max_candidates,
        max_memory=args.max_memory,
        keep_texts=keep[args.keep_texts],
    )


def _source(args: argparse.Namespace) -> Any:
    if not args.inputs:
        return None
    return args.inputs[0] if len(args.inputs) == 1 else list(args.inputs)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _print_table(title: str, rows: Dict[str, Any], out: Any) -> None:
    print(title, file=out)
    width = max(len(k) for k in rows) if rows else 0
    for k, v in rows.items():
        if isinstance(v, dict):
            continue
        print(f"  {k.ljust(width)}  {_fmt(v)}", file=out)


def _strategy_options(args: argparse.Namespace) -> Dict[str, Any]:
    opts: Dict[str, Any] = {}
    if args.weighting is not None:
        opts["weighting"] = args.weighting
    if args.draw is not None:
        opts["draw"] = args.draw
    for item in args.option or []:
        if "=" not in item:
            raise _usage(f"--option expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        try:
            opts[k.replace("-", "_")] = json.loads(v)
        except json.JSONDecodeError:
            opts[k.replace("-", "_")] = v
    return opts


class _UsageError(ZipcalError, ValueError):
    pass


def _usage(msg: str) -> _UsageError:
    return _UsageError(msg)


def cmd_select(args: argparse.Namespace) -> int:
    from .default_corpus import DESCRIPTION
    from .selection import select

    if args.verify:
        return _verify_select(args)
    source = _source(args)
    out = sys.stdout
    if source is None and not args.quiet:
        print(
            textwrap.fill(
                f"No input given: selecting from the embedded default corpus, {DESCRIPTION}. "
                f"Pass Parquet/JSONL/text files (or globs) to select from your own data.",
                width=100,
            ),
            file=sys.stderr,
        )
    if args.ray:
        pool = _ray_pool(source, args)
    else:
        pool = _local_pool(source, args)
    sel = select(pool, args.n, strategy=args.strategy, seed=args.seed, threads=args.threads, **_strategy_options(args))
    pool = sel.pool  # a bounded pool may have been re-read with a larger cap
    if args.output:
        if pool.options is None:  # read on Ray: the manifest records what defined the pool
            pool.options, pool.input_spec = _pool_options(args).checked(), list(args.inputs)
        # The manifest's command repeats the memory bounds as given (not the cap they led to).
        bounds = {"max_candidates": args.max_candidates, "max_memory": args.max_memory}
        sel.save(args.output, manifest=False if args.no_manifest else {"input_options": bounds})
    if args.stats_json:
        from .files import atomic_path

        with atomic_path(args.stats_json) as tmp, open(tmp, "w", encoding="utf-8") as f:
            json.dump({"pool": pool.stats, "selection": sel.stats}, f, indent=2, default=float)
    if args.plot:
        from .frequencies import plot_rank_frequency

        plot_rank_frequency(_plot_series(pool, sel), args.plot)
    if not args.quiet:
        s = sel.stats
        summary = {
            "strategy": s["strategy"],
            "segmenter": s["segmenter"],
            "unit": s["unit"],
            "pool rows": pool.report["rows"],
            "pool candidates": s["pool_candidates"],
            "rows": f"{s['n']} x {s['seq_len']} tokens, from {s['candidates']} candidates",
            "tokens fed": (
                f"{s['tokens_fed']} of {s['n'] * s['row_capacity']} "
                f"({s['pad_tokens']} padding, {100 * s['pad_fraction']:.1f}%)"
            ),
            "types fed": f"{s['types_covered']} / {s['types_available']} "
            f"({100 * (s['coverage'] or 0):.1f}% of the pool)",
            "type-token ratio": f"{_fmt(s['type_token_ratio'])} (pool {_fmt(s['pool_type_token_ratio'])})",
            "Zipf exponent": f"{_fmt(s['zipf_exponent'])} (pool {_fmt(s['pool_zipf_exponent'])})",
            "read + tokenize": f"{s['ingest_seconds']:.3f} s",
            "select": f"{s['select_seconds']:.4f} s",
        }
        if "certificate" in s:
            summary["bounded pool"] = (
                f"{s['max_candidates']} candidates kept, {s['evicted_candidates']} evicted, "
                f"exact: {'yes (certified)' if s['certificate'] else 'not certified'}"
            )
        _print_table("zipcal select", summary, out)
        if args.output:
            print(f"wrote {len(sel)} candidates (filling {s['n']} rows) to {args.output}", file=out)
            if not args.no_manifest:
                print(f"wrote the manifest {args.output}.manifest.json (check it: zipcal select --verify)", file=out)
        else:
            print("first samples (use -o FILE.parquet|.jsonl to save all):", file=out)
            for i in range(min(3, len(sel))):
                snippet = " ".join(sel.texts[i].split())[:96]
                print(f"  [{sel.indices[i]}] {snippet}", file=out)
    return 0


def _verify_select(args: argparse.Namespace) -> int:
    """``zipcal select --verify MANIFEST``: check the inputs, re-run the recorded command
    (writing nothing) and compare. 0: same selection; 1: something differs; 2: no
    usable manifest."""
    from . import manifest as mf
    from .selection import select

    given = [
        flag
        for flag, value in (
            ("INPUT", args.inputs),
            ("-o", args.output),
            ("--stats-json", args.stats_json),
            ("--plot", args.plot),
            ("--ray", args.ray),
        )
        if value
    ]
    if given:
        raise _usage(f"--verify re-runs the manifest's command; it takes no {', '.join(given)}")

    def rerun(argv: List[str]) -> Any:
        import contextlib
        import io

        try:
            with contextlib.redirect_stderr(io.StringIO()) as err:
                ns = build_parser().parse_args(["select", *argv])
        except SystemExit:
            msg = err.getvalue().strip().splitlines()
            raise mf.ManifestError(
                f"{args.verify}: the recorded command is not a valid zipcal select command"
                + (f" ({msg[-1]})" if msg else "")
            ) from None
        if ns.verify or ns.output or ns.ray:
            raise mf.ManifestError(f"{args.verify}: the recorded command must not verify, write or use Ray")
        ns.quiet, ns.threads = args.quiet, args.threads
        pool = _local_pool(_source(ns), ns)
        return select(pool, ns.n, strategy=ns.strategy, seed=ns.seed, threads=ns.threads, **_strategy_options(ns))

    res = mf.verify(args.verify, rerun)
    for w in res.warnings:
        print(f"zipcal: warning: {w}", file=sys.stderr)
    if not res.ok:
        print(f"zipcal: verify failed: {res.problems[0]}", file=sys.stderr)
        for p in res.problems[1:]:
            print(f"zipcal: also: {p}", file=sys.stderr)
        return 1
    print(f"verified: {res.rows} rows, same selection")
    return 0


def _ray_pool(source: Any, args: argparse.Namespace) -> Any:
    from .errors import InvalidArgumentError

    if source is None:
        raise InvalidArgumentError("--ray needs input files (the embedded corpus is selected locally)")
    if args.max_memory is not None or args.keep_texts != "auto":
        raise InvalidArgumentError(
            "--ray bounds memory with --max-candidates; --max-memory and --keep-texts do not apply"
        )
    if args.chat_template is not None:
        raise InvalidArgumentError("--ray does not render chat messages: select them without --ray")
    from . import distributed

    return distributed.build_pool(
        source,
        _pool_options(args),
        max_candidates=args.max_candidates,
        cpus_per_task=args.ray_cpus_per_task,
        progress=not args.quiet,
    )


def cmd_stats(args: argparse.Namespace) -> int:
    from .selection import select

    pool = _local_pool(_source(args), args)
    stats = pool.stats
    if args.json:
        print(json.dumps(stats, indent=2, default=float))
    else:
        _print_table(
            f"zipcal stats ({'default corpus' if not args.inputs else ', '.join(args.inputs)})", stats, sys.stdout
        )
    if args.plot:
        from .frequencies import plot_rank_frequency

        sel = select(pool, min(args.n, len(pool))) if len(pool) else None
        plot_rank_frequency(_plot_series(pool, sel), args.plot)
        if not args.quiet:
            print(f"wrote {args.plot}")
    return 0


def cmd_strategies(args: argparse.Namespace) -> int:
    from .strategies import available

    for name, desc in available().items():
        print(f"{name:24s} {desc}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zipcal",
        description="Fast, model-agnostic calibration data selection for pruning and quantizing LLMs.",
    )
    parser.add_argument("--version", action="version", version=f"zipcal {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "select",
        help="choose calibration samples",
        description="Choose n calibration samples by lexical coverage (or another strategy).",
    )
    _common_input_args(p)
    p.add_argument(
        "-n",
        type=int,
        default=128,
        help="calibration rows of --seq-len tokens to fill (default 128); short candidates share rows",
    )
    p.add_argument(
        "--strategy",
        default="zipcal",
        help="zipcal (default), zipcal-zipf, zipcal-words-dataset, random, ... (see `zipcal strategies`)",
    )
    p.add_argument("--weighting", choices=["uniform", "zipf"], default=None, help="type weights for zipcal strategies")
    p.add_argument(
        "--draw", type=int, default=None, help="random strategy: index of a disjoint draw with the same seed"
    )
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="extra strategy option (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="seed for every random choice (default 0)")
    p.add_argument(
        "-o",
        "--output",
        help="write the selection to this .parquet or .jsonl file (atomically), and its manifest "
        "(inputs and their hashes, options, statistics) to FILE.manifest.json",
    )
    p.add_argument("--no-manifest", action="store_true", help="with -o: write no FILE.manifest.json")
    p.add_argument(
        "--verify",
        metavar="MANIFEST",
        help="check a selection's manifest: re-hash its inputs, re-run its command (writing nothing) and "
        "compare; exit 0 if the selection is the same, 1 if not",
    )
    p.add_argument("--stats-json", help="also write pool and selection statistics to this JSON file")
    p.add_argument("--plot", help="write a rank-frequency plot (PNG) of pool vs selection (needs matplotlib)")
    p.add_argument(
        "--ray",
        action="store_true",
        help="read and tokenize on Ray Data (the cluster at RAY_ADDRESS, else a local one); "
        "inputs must be files every worker can read",
    )
    p.add_argument(
        "--ray-cpus-per-task", type=int, default=1, help="with --ray: CPUs (tokenization threads) per task (default 1)"
    )
    p.set_defaults(func=cmd_select)

    p = sub.add_parser("stats", help="corpus statistics (types, tokens, Zipf exponent)")
    _common_input_args(p)
    p.add_argument("--plot", help="write a rank-frequency plot (PNG) of the pool vs a zipcal selection")
    p.add_argument("-n", type=int, default=128, help="selection size for --plot (default 128)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("strategies", help="list selection strategies")
    p.set_defaults(func=cmd_strategies)

    from .experiments import register as register_bench

    register_bench(sub)

    try:
        from .compress.commands import register as register_compress
    except ImportError:
        pass
    else:
        register_compress(sub)
    return parser


def _plot_series(pool: Any, sel: Any) -> List[Tuple[str, Any]]:
    series = [("pool", pool.counts)]
    if sel is not None:
        series.append((f"selection ({sel.strategy}, n={len(sel)})", sel.type_counts()))
    return series


@contextlib.contextmanager
def _hub_progress_bars_off() -> Iterator[None]:
    """``-q``: no download or weight-loading bars from huggingface_hub, nor from
    transformers (which starts with the hub's setting), for the time of the command;
    the setting is restored afterwards."""
    try:
        import huggingface_hub.utils as hub
    except ImportError:  # pragma: no cover - no hub, no hub bars
        yield
        return
    was_on = not hub.are_progress_bars_disabled()
    hub.disable_progress_bars()
    tf_logging = sys.modules.get("transformers.utils.logging")
    if tf_logging is not None:
        tf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hub.enable_progress_bars()
            tf_logging = sys.modules.get("transformers.utils.logging")
            if tf_logging is not None:
                tf_logging.enable_progress_bar()


def main(argv: Optional[Sequence[str]] = None) -> int:
    if "numpy" not in sys.modules:
        # OpenBLAS (numpy's BLAS) starts a thread per CPU at import, and each spins for
        # a while before it sleeps: about 0.1 CPU-s taken from the selection's own
        # threads on a small machine. This command makes no BLAS calls worth keeping
        # them awake for. A value set by the user wins.
        os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    quiet = _hub_progress_bars_off() if getattr(args, "quiet", False) else contextlib.nullcontext()
    try:
        with quiet:
            return int(args.func(args) or 0)
    except ZipcalError as e:
        print(f"zipcal: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("zipcal: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Experiment harness: calibration-data quality across compression methods, and
selection speed of ZipCal against the model-based baselines.

    zipcal bench quality [--quick] [--tiny-model] [--out DIR] ...
    zipcal bench speed [--pool-size N] [--repeats K] ...

``register(subparsers)`` adds the ``bench`` command to the ``zipcal`` CLI.
Importing this package imports neither torch nor the model.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add ``bench quality`` and ``bench speed`` to an argparse subparsers object."""
    p = subparsers.add_parser(
        "bench",
        help="experiments: calibration quality grid, selection speed",
        description="Experiment harness for calibration-data strategies (needs zipcal[torch]).",
    )
    sub = p.add_subparsers(dest="bench_command", metavar="EXPERIMENT")

    from . import quality, speed

    q = sub.add_parser(
        "quality",
        help="strategy x compression method x seed grid on SmolLM2-135M",
        description="Select calibration data with each strategy, compress, evaluate perplexity; "
        "writes results.json, report.md and quality_vs_time.png into --out (resumable).",
    )
    quality.add_arguments(q)
    q.set_defaults(func=quality.cmd_quality)

    s = sub.add_parser(
        "speed",
        help="selection time of each strategy, as a ratio to ZipCal",
        description="Time each strategy's selection on the same pool; writes speed.json and speed.md.",
    )
    speed.add_arguments(s)
    s.set_defaults(func=speed.cmd_speed)

    def _help(args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=_help)


def main(argv: Any = None) -> int:
    """``python -m zipcal.experiments quality ...`` without the main CLI."""
    import logging
    import sys

    parser = argparse.ArgumentParser(prog="zipcal")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command")
    register(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)

"""Running the compression commands (compress, eval, experts) in-process."""

from __future__ import annotations

import argparse


def run_cli(argv):
    """Exit status of a ``zipcal`` compression command (compress, eval, experts)."""
    from zipcal.compress.commands import register

    parser = argparse.ArgumentParser(prog="zipcal")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def save_model(model, tokenizer, path):
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path

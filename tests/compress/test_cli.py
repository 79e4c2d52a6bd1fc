"""``zipcal compress`` / ``zipcal eval`` end to end through argparse."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.compress_cli import run_cli, save_model


@pytest.fixture()
def model_dir(tmp_path, make_model, tiny_tokenizer):
    return save_model(make_model("llama", vocab_size=len(tiny_tokenizer)), tiny_tokenizer, tmp_path / "tiny-llama")


@pytest.fixture()
def calib_file(tmp_path, doc_texts):
    p = tmp_path / "calib.parquet"
    pq.write_table(pa.table({"text": doc_texts[:8]}), p)
    return p


@pytest.fixture()
def eval_file(tmp_path, doc_texts):
    p = tmp_path / "test.txt"
    p.write_text("\n\n".join(doc_texts[10:16]))
    return p


def test_cli_module_imports_without_torch():
    code = (
        "import sys, builtins\n"
        "real = builtins.__import__\n"
        "def guard(name, *a, **k):\n"
        "    if name.split('.')[0] in ('torch', 'transformers'):\n"
        "        raise ImportError('blocked ' + name)\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = guard\n"
        "import zipcal.compress.commands as c\n"
        "import argparse\n"
        "p = argparse.ArgumentParser(); s = p.add_subparsers(dest='cmd')\n"
        "c.register(s)\n"
        "args = p.parse_args(['compress', 'm', '--method', 'rtn', '-o', 'x'])\n"
        "sys.exit(10 + args.func(args))\n"
    )
    import os
    from pathlib import Path

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "python"))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert res.returncode == 12, res.stderr  # handler ran and reported the missing dependency
    assert "needs PyTorch" in res.stderr


@pytest.mark.parametrize(
    "argv,meta_name",
    [
        (["--method", "wanda", "--sparsity", "0.5"], "zipcal_pruning.json"),
        (["--method", "sparsegpt", "--structure", "2:4"], "zipcal_pruning.json"),
        (["--method", "gptq", "--bits", "4", "--group-size", "32", "--act-order"], "zipcal_quantization.json"),
        (["--method", "rtn", "--bits", "3", "--group-size", "-1", "--symmetric"], "zipcal_quantization.json"),
    ],
)
def test_compress_then_eval(argv, meta_name, model_dir, calib_file, eval_file, tmp_path, capsys):
    out = tmp_path / "out"
    rc = run_cli(
        [
            "compress",
            str(model_dir),
            *argv,
            "--calib",
            str(calib_file),
            "--seq-len",
            "64",
            "-o",
            str(out),
            "--device",
            "cpu",
            "--quiet",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "saved to" in printed
    meta = json.loads((out / meta_name).read_text())
    assert meta["method"] == argv[1]
    assert (out / "config.json").is_file() and (out / "tokenizer.json").is_file()
    if meta_name == "zipcal_pruning.json":
        assert "total  sparsity 0.5" in printed
        assert meta["calibration"]["sequences"] == 8 and meta["calibration"]["seq_len"] == 64
    rc = run_cli(["eval", str(out), "--ppl", str(eval_file), "--seq-len", "32", "--json", "--quiet"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert res["perplexity"]["ppl"] > 1 and res["perplexity"]["windows"] > 0


def test_overwrite_and_errors(model_dir, calib_file, eval_file, tmp_path, capsys, make_model):
    out = tmp_path / "out"
    base = ["compress", str(model_dir), "--method", "magnitude", "-o", str(out), "-q"]
    assert run_cli(base) == 0
    assert run_cli(base) == 2
    assert "not empty" in capsys.readouterr().err
    assert run_cli(base + ["--overwrite"]) == 0
    # calibration-based method without --calib
    assert run_cli(["compress", str(model_dir), "--method", "wanda", "-o", str(tmp_path / "o2")]) == 2
    assert "--calib" in capsys.readouterr().err
    # a hub name that the cache lacks, offline (as every test runs): one line, exit 2
    assert run_cli(["compress", "someorg/some-model", "--method", "rtn", "-o", str(tmp_path / "o3")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "someorg/some-model: not in the Hugging Face cache" in err[0]
    # tokenizer larger than the model's embedding
    small = tmp_path / "small"
    make_model("llama", vocab_size=64).save_pretrained(small)
    import shutil

    for f in model_dir.glob("tokenizer*"):
        shutil.copy(f, small / f.name)
    assert run_cli(["eval", str(small), "--ppl", str(eval_file), "--seq-len", "32"]) == 2
    err = [l for l in capsys.readouterr().err.splitlines() if l.startswith("zipcal eval")]
    assert len(err) == 1 and "tokenizer" in err[0] and "embedding" in err[0]
    assert not list(tmp_path.glob(".out.tmp-*"))


def test_eval_multiple_choice(model_dir, tmp_path, capsys):
    tasks = tmp_path / "t.jsonl"
    tasks.write_text(json.dumps({"context": "Open the", "choices": ["file", "door"], "label": 0}) + "\n")
    assert run_cli(["eval", str(model_dir), "--tasks", str(tasks)]) == 0
    assert "acc" in capsys.readouterr().out


def test_quiet_silences_weight_loading_bars(model_dir, calib_file, tmp_path):
    """-q: nothing on stderr, the bars of transformers' weight loading included."""
    argv = ["compress", str(model_dir), "--method", "wanda", "--calib", str(calib_file), "--seq-len", "32"]
    argv += ["--device", "cpu", "-o", str(tmp_path / "out")]
    loud = subprocess.run([sys.executable, "-m", "zipcal", *argv], capture_output=True, text=True, timeout=300)
    assert loud.returncode == 0, loud.stderr
    assert "Loading weights" in loud.stderr  # the bar this test is about exists
    quiet = subprocess.run(
        [sys.executable, "-m", "zipcal", *argv, "--overwrite", "-q"], capture_output=True, text=True, timeout=300
    )
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr.strip() == ""


def test_quiet_restores_the_hub_setting_afterwards(model_dir, calib_file, tmp_path):
    """In process (as a library caller of zipcal.cli.main): -q switches the bars off
    for the command only."""
    import huggingface_hub.utils as hub
    from transformers.utils import logging as tf_logging

    from zipcal.cli import main

    assert not hub.are_progress_bars_disabled() and tf_logging.is_progress_bar_enabled()
    argv = ["compress", str(model_dir), "--method", "magnitude", "--device", "cpu", "-o", str(tmp_path / "m"), "-q"]
    assert main(argv) == 0
    assert not hub.are_progress_bars_disabled() and tf_logging.is_progress_bar_enabled()
    assert "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ

"""The ``zipcal`` command line, end to end on WikiText-2 valid."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import zipcal
from zipcal import cli

REPO_ROOT = Path(__file__).resolve().parents[2]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def valid_txt() -> str:
    path = (REPO_ROOT / ".." / "shared" / "data" / "wikitext-2" / "valid.txt").resolve()
    if not path.is_file():
        pytest.skip(f"WikiText-2 valid.txt not found at {path} (resolved from the repository root)")
    return str(path)


def _run(capsys, argv):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_select_to_parquet(tmp_path, capsys, valid_txt):
    out_file = tmp_path / "out.parquet"
    rc, out, err = _run(capsys, ["select", valid_txt, "-n", "128", "--seq-len", "512", "-o", str(out_file)])
    assert rc == 0, err
    assert "types fed" in out
    t = pq.read_table(out_file)
    assert t.num_rows >= 128  # short candidates share rows: at least one candidate per row
    assert f"wrote {t.num_rows} candidates (filling 128 rows)" in out
    assert t.column_names == ["row", "source", "source_row", "window", "tokens", "gain", "text"]
    assert set(t["source"].to_pylist()) == {valid_txt}
    # the same selection through the API
    sel = zipcal.select(valid_txt, 128, seq_len=512)
    assert sel.stats["n"] == 128 and sel.stats["tokens_fed"] == 128 * 512
    assert t["row"].to_pylist() == sel.indices.tolist()
    assert t["window"].to_pylist() == sel.windows.tolist()
    assert t["text"].to_pylist() == sel.texts
    assert f"{sel.stats['types_covered']} / {sel.stats['types_available']}" in out
    assert f"128 x 512 tokens, from {len(sel)} candidates" in out


def test_select_twice_same_content(tmp_path, capsys, valid_txt):
    tables = []
    for k in range(2):
        f = tmp_path / f"run{k}.parquet"
        rc, _, err = _run(capsys, ["select", valid_txt, "-n", "64", "--seed", "5", "-o", str(f), "-q"])
        assert rc == 0, err
        tables.append(pq.read_table(f))
    assert tables[0].equals(tables[1])


def test_select_twice_byte_identical_parquet(tmp_path, capsys, valid_txt):
    blobs = []
    for k in range(2):
        f = tmp_path / f"run{k}.parquet"
        rc, _, err = _run(capsys, ["select", valid_txt, "-n", "128", "--seq-len", "512", "--seed", "3", "-o", str(f)])
        assert rc == 0, err
        blobs.append(f.read_bytes())
    assert blobs[0] == blobs[1]


def test_select_jsonl_is_byte_identical(tmp_path, capsys, valid_txt):
    blobs = []
    for k in range(2):
        f = tmp_path / f"run{k}.jsonl"
        rc, out, err = _run(
            capsys, ["select", valid_txt, "-n", "32", "--strategy", "random", "--seed", "9", "-o", str(f)]
        )
        assert rc == 0, err
        blobs.append(f.read_bytes())
    assert blobs[0] == blobs[1]
    recs = [json.loads(l) for l in blobs[0].decode("utf-8").splitlines()]
    assert len(recs) >= 32
    assert all(set(r) == {"row", "source", "source_row", "window", "tokens", "gain", "text"} for r in recs)
    want = zipcal.select(valid_txt, 32, strategy="random", seed=9)
    assert want.stats["n"] == 32 and len(want) == len(recs)
    assert [(r["row"], r["window"]) for r in recs] == list(zip(want.indices.tolist(), want.windows.tolist()))


def test_select_with_gpt2_tokenizer(tmp_path, capsys, valid_txt):
    f = tmp_path / "g.parquet"
    stats = tmp_path / "stats.json"
    rc, out, err = _run(
        capsys,
        [
            "select",
            valid_txt,
            "-n",
            "16",
            "--tokenizer",
            "gpt2",
            "--seq-len",
            "256",
            "-o",
            str(f),
            "--stats-json",
            str(stats),
        ],
    )
    assert rc == 0, err
    assert "gpt2" in out and "types fed" in out
    t = pq.read_table(f)
    sel = zipcal.select(valid_txt, 16, tokenizer="gpt2", seq_len=256)
    assert t["row"].to_pylist() == sel.indices.tolist()
    assert t["window"].to_pylist() == sel.windows.tolist()
    assert t["tokens"].to_pylist() == sel.token_counts.tolist()
    s = json.loads(stats.read_text(encoding="utf-8"))
    assert s["selection"]["n"] == 16 and s["selection"]["segmenter"] == "gpt2"
    assert s["pool"]["candidates"] == len(sel.pool)


def test_select_strategy_options(tmp_path, capsys, valid_txt):
    f0, f1 = tmp_path / "d0.jsonl", tmp_path / "d1.jsonl"
    for f, draw in ((f0, "0"), (f1, "1")):
        rc, _, err = _run(
            capsys, ["select", valid_txt, "-n", "20", "--strategy", "random", "--draw", draw, "-o", str(f), "-q"]
        )
        assert rc == 0, err
    recs0 = [json.loads(l) for l in f0.read_text().splitlines()]
    recs1 = [json.loads(l) for l in f1.read_text().splitlines()]
    for recs in (recs0, recs1):
        # each draw is the shortest run of picks whose tokens fill 20 rows of 2048 (words: no specials, no EOS)
        tokens = [r["tokens"] for r in recs]
        assert sum(tokens[:-1]) < 20 * 2048 <= sum(tokens)
    keys0 = {(r["row"], r["window"]) for r in recs0}
    keys1 = {(r["row"], r["window"]) for r in recs1}
    assert len(keys0) == len(recs0) >= 20 and len(keys1) == len(recs1) >= 20 and not keys0 & keys1
    fz = tmp_path / "z.jsonl"
    rc, out, err = _run(capsys, ["select", valid_txt, "-n", "10", "--weighting", "zipf", "-o", str(fz)])
    assert rc == 0, err
    want = zipcal.select(valid_txt, 10, strategy="zipcal-zipf")
    recs = [json.loads(l) for l in fz.read_text().splitlines()]
    assert [(r["row"], r["window"]) for r in recs] == list(zip(want.indices.tolist(), want.windows.tolist()))


def test_select_without_input_uses_default_corpus(capsys):
    rc, out, err = _run(capsys, ["select", "-n", "8"])
    assert rc == 0, err
    assert "default corpus" in err and "pydoc_data" in err
    assert "types fed" in out and "first samples" in out
    assert "Traceback" not in err
    # quiet: no explanation
    rc, out, err = _run(capsys, ["select", "-n", "4", "-q"])
    assert rc == 0 and err.strip() == ""


def test_select_window_unit(tmp_path, capsys, valid_txt):
    f = tmp_path / "w.parquet"
    rc, out, err = _run(
        capsys, ["select", valid_txt, "-n", "12", "--unit", "window", "--seq-len", "64", "-o", str(f), "-q"]
    )
    assert rc == 0, err
    t = pq.read_table(f)
    assert t.num_rows == 12
    assert max(t["tokens"].to_pylist()) <= 64
    assert max(t["window"].to_pylist()) >= 0


def test_stats_with_plot(tmp_path, capsys, valid_txt):
    png = tmp_path / "plots" / "x.png"
    rc, out, err = _run(capsys, ["stats", valid_txt, "--plot", str(png), "-n", "32"])
    assert rc == 0, err
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    assert png.stat().st_size > 1000
    assert "types" in out and "zipf_exponent" in out
    rc, out, err = _run(capsys, ["stats", valid_txt, "--json"])
    assert rc == 0, err
    s = json.loads(out)
    pool = zipcal.load_pool(valid_txt)
    assert s["candidates"] == len(pool) and s["types"] == int((pool.counts > 0).sum())


def test_select_plot(tmp_path, capsys, valid_txt):
    png = tmp_path / "sel.png"
    rc, out, err = _run(capsys, ["select", valid_txt, "-n", "16", "--plot", str(png), "-q"])
    assert rc == 0, err
    assert png.read_bytes()[:8] == PNG_SIGNATURE


def test_strategies_lists_builtins(capsys):
    rc, out, err = _run(capsys, ["strategies"])
    assert rc == 0
    names = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert {"zipcal", "zipcal-zipf", "zipcal-words-dataset", "random"} <= names


def test_version(capsys):
    with pytest.raises(SystemExit) as ei:
        cli.main(["--version"])
    assert ei.value.code == 0
    assert zipcal.__version__ in capsys.readouterr().out


def _console_script() -> str:
    exe = Path(sys.executable).with_name("zipcal")
    if exe.is_file():
        return str(exe)
    found = shutil.which("zipcal")
    if not found:
        pytest.skip("the zipcal console script is not installed in this environment")
    return found


def test_console_script_entry_point(tmp_path, valid_txt):
    exe = _console_script()
    out_file = tmp_path / "cs.parquet"
    r = subprocess.run(
        [exe, "select", "-q", "-n", "8", valid_txt, "-o", str(out_file)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    t = pq.read_table(out_file)
    meta = json.loads(t.schema.metadata[b"zipcal"])
    assert meta["n"] == 8 and t.num_rows == meta["candidates"] >= 8
    assert r.stderr.strip() == ""
    bad = subprocess.run(
        [exe, "select", "-q", "-n", "8", str(tmp_path / "missing.txt")], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("zipcal: error: ") and bad.stderr.count("\n") == 1
    m = subprocess.run([sys.executable, "-m", "zipcal", "strategies"], capture_output=True, text=True, timeout=120)
    assert m.returncode == 0 and "zipcal-zipf" in m.stdout


@pytest.mark.parametrize("preset", [None, "100"])
def test_cli_keeps_openblas_threads_from_spinning_unless_told_otherwise(preset):
    """The command sets OPENBLAS_THREAD_TIMEOUT before numpy loads (OpenBLAS reads it
    once); a value in the environment is left alone."""
    code = (
        "import os, sys; from zipcal.cli import main; rc = main(['strategies']); "
        "import numpy; print('TIMEOUT', os.environ.get('OPENBLAS_THREAD_TIMEOUT'), rc)"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if preset is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = preset
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-400:]
    assert f"TIMEOUT {preset or '4'} 0" in r.stdout

"""Bad input gives a specific zipcal exception whose message names the file and, where
relevant, the line, row or column; the CLI turns each into one line on stderr and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import zipcal
from zipcal import cli
from zipcal.errors import (
    InputError,
    InvalidArgumentError,
    NotEnoughCandidatesError,
    SourceNotFoundError,
    TokenizerError,
    ZipcalError,
)

DOCS = [
    "alpha beta gamma delta epsilon zeta eta theta",
    "iota kappa lambda mu nu xi omicron pi",
    "rho sigma tau upsilon phi chi psi omega",
]


def check(excinfo, cls, builtin, *parts):
    e = excinfo.value
    assert isinstance(e, ZipcalError)
    assert isinstance(e, cls)
    assert isinstance(e, builtin)
    msg = str(e)
    for p in parts:
        assert str(p) in msg, f"{p!r} not in {msg!r}"
    return msg


# ------------------------------------------------------------------ bad inputs (files)


def _files(tmp_path: Path):
    """Each broken input: (name, path, expected class, builtin, message parts)."""
    out = {}
    out["missing file"] = (tmp_path / "absent.parquet", SourceNotFoundError, FileNotFoundError, ["absent.parquet"])
    out["glob matching nothing"] = (
        tmp_path / "nothing-*.jsonl",
        SourceNotFoundError,
        FileNotFoundError,
        ["nothing-*.jsonl"],
    )
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(bytes(range(256)) * 7)
    out["corrupt parquet"] = (corrupt, InputError, ValueError, ["corrupt.parquet"])
    corrupt_arrow = tmp_path / "corrupt.arrow"
    corrupt_arrow.write_bytes(b"ARROW1\x00\x00" + bytes(range(200)))
    out["corrupt arrow"] = (corrupt_arrow, InputError, ValueError, ["corrupt.arrow"])
    nocol = tmp_path / "nocol.parquet"
    pq.write_table(pa.table({"title": ["a b", "c d"], "body": ["e f", "g h"], "n": [1, 2]}), nocol)
    out["missing text column"] = (nocol, InputError, ValueError, ["nocol.parquet", "'text'", "title", "body", "n"])
    intcol = tmp_path / "intcol.parquet"
    pq.write_table(pa.table({"text": [1, 2, 3]}), intcol)
    out["non-string text column"] = (intcol, InputError, ValueError, ["intcol.parquet", "'text'", "int64"])
    badjson = tmp_path / "bad.jsonl"
    badjson.write_text(
        '{"text": "a b c"}\n{"text": "d e f"}\n\n{"text": "g h" oops}\n{"text": "i"}\n', encoding="utf-8"
    )
    out["jsonl bad line"] = (badjson, InputError, ValueError, ["bad.jsonl", "line 4", "column"])
    nonstr = tmp_path / "nonstr.jsonl"
    nonstr.write_text('{"text": "a b c"}\n{"text": 17}\n', encoding="utf-8")
    out["jsonl non-string value"] = (nonstr, InputError, ValueError, ["nonstr.jsonl", "line 2", "'text'", "int"])
    notobj = tmp_path / "notobj.jsonl"
    notobj.write_text('{"text": "a b c"}\n["x"]\n', encoding="utf-8")
    out["jsonl not an object"] = (notobj, InputError, ValueError, ["notobj.jsonl", "line 2"])
    badutf = tmp_path / "bad_utf8.txt"
    badutf.write_bytes(b"first line is fine\nsecond line too\nthird \xff\xfe line\nfourth\n")
    out["invalid utf-8 text"] = (badutf, InputError, ValueError, ["bad_utf8.txt", "line 3", "byte 6"])
    empty_dir = tmp_path / "emptydir"
    empty_dir.mkdir()
    (empty_dir / "notes.bin").write_bytes(b"\x00")
    out["folder without supported files"] = (empty_dir, SourceNotFoundError, FileNotFoundError, ["emptydir"])
    return out


CASES = [
    "missing file",
    "glob matching nothing",
    "corrupt parquet",
    "corrupt arrow",
    "missing text column",
    "non-string text column",
    "jsonl bad line",
    "jsonl non-string value",
    "jsonl not an object",
    "invalid utf-8 text",
    "folder without supported files",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_file_inputs(tmp_path, case):
    path, cls, builtin, parts = _files(tmp_path)[case]
    with pytest.raises(cls) as ei:
        zipcal.select(str(path), 1, min_tokens=1)
    check(ei, cls, builtin, *parts)
    # load_pool raises the same
    with pytest.raises(cls):
        zipcal.load_pool(str(path), min_tokens=1)


@pytest.mark.parametrize("case", CASES)
def test_cli_reports_bad_inputs_in_one_line(tmp_path, capsys, case):
    path, cls, builtin, parts = _files(tmp_path)[case]
    rc = cli.main(["select", str(path), "-n", "1", "--min-tokens", "1", "-o", str(tmp_path / "out.parquet")])
    out, err = capsys.readouterr()
    assert rc == 2
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("zipcal: error: ")
    assert "Traceback" not in err
    for p in parts:
        assert str(p) in lines[0]
    assert not (tmp_path / "out.parquet").exists()


def test_missing_column_in_memory_lists_columns():
    t = pa.table({"title": ["a"], "body": ["b"]})
    with pytest.raises(InputError) as ei:
        zipcal.select(t, 1, text_column="content")
    check(ei, InputError, ValueError, "'content'", "title", "body")


def test_non_string_rows_of_an_iterable_name_the_row():
    with pytest.raises(InputError) as ei:
        zipcal.select(["a b c", "d e f", b"bytes"], 1, min_tokens=1)
    check(ei, InputError, ValueError, "row 2", "bytes")
    with pytest.raises(InputError) as ei:
        zipcal.select([{"text": "a b"}, {"body": "c"}], 1, min_tokens=1)
    check(ei, InputError, ValueError, "row 1", "'text'")


def test_pandas_non_string_value_is_an_input_error():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"text": ["alpha beta gamma", 5, None]})
    with pytest.raises(InputError) as ei:
        zipcal.select(df, 1, min_tokens=1)
    check(ei, InputError, ValueError, "pandas", "'text'")


def test_non_string_columns_of_dataframes_and_datasets():
    pl = pytest.importorskip("polars")
    with pytest.raises(InputError) as ei:
        zipcal.select(pl.DataFrame({"text": [1, 2]}), 1, min_tokens=1)
    check(ei, InputError, ValueError, "polars", "'text'", "int64")
    datasets = pytest.importorskip("datasets")
    with pytest.raises(InputError) as ei:
        zipcal.select(datasets.Dataset.from_dict({"a": [1, 2], "b": [3, 4]}), 1, min_tokens=1)
    check(ei, InputError, ValueError, "datasets", "'text'", "'a'", "'b'")


def test_null_rows_are_skipped_and_counted(tmp_path):
    rows = [DOCS[0], None, DOCS[1], None, None, "   ", DOCS[2]]
    p = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"text": pa.array(rows, type=pa.string())}), p)
    j = tmp_path / "nulls.jsonl"
    j.write_text("".join(json.dumps({"text": r}) + "\n" for r in rows), encoding="utf-8")
    for source in (rows, str(p), str(j)):
        pool = zipcal.load_pool(source, min_tokens=1)
        assert pool.report["null_rows"] == 3
        assert pool.report["empty_rows"] == 1
        assert pool.report["rows"] == len(rows)
        assert len(pool) == 3
        assert pool.stats["null_rows"] == 3
        sel = zipcal.select(pool, 3)
        assert sorted(sel.indices.tolist()) == [0, 2, 6]


def test_invalid_utf8_replace_is_counted(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_bytes(b"good words here\nbad \xff words here\nmore \xc3 bad \xe2\x82 here\nfine words\n")
    pool = zipcal.load_pool(str(p), text_split="line", encoding_errors="replace", min_tokens=1)
    assert pool.invalid_utf8_rows == 2
    assert pool.stats["invalid_utf8_rows"] == 2
    assert len(pool) == 4
    assert "\ufffd" in pool.row_text(1)
    # a literal U+FFFD in valid UTF-8 is not an invalid row
    q = tmp_path / "ok.txt"
    q.write_text("replacement \ufffd char is valid\nsecond\n", encoding="utf-8")
    assert zipcal.load_pool(str(q), text_split="line", encoding_errors="replace", min_tokens=1).invalid_utf8_rows == 0


_SUBPROCESS = textwrap.dedent(
    """
    import sys, zipcal, pyarrow as pa, pyarrow.parquet as pq
    kind, path = sys.argv[1], sys.argv[2]
    if kind == "jsonl-strict":
        try:
            zipcal.load_pool(path, min_tokens=1)
        except zipcal.InputError as e:
            print("ERROR", e)
    elif kind == "jsonl-replace":
        pool = zipcal.load_pool(path, min_tokens=1, encoding_errors="replace")
        print("COUNT", pool.invalid_utf8_rows)
    elif kind == "arrow":
        bad = pa.array([b"alpha beta", b"x \\xff y z"], pa.binary()).view(pa.string())
        try:
            zipcal.load_pool(pa.table({"text": bad}), min_tokens=1)
        except zipcal.InputError as e:
            print("ERROR", e)
    """
)


def _run_isolated(tmp_path, kind, path=""):
    script = tmp_path / "probe.py"
    script.write_text(_SUBPROCESS, encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(script), kind, str(path)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )


def test_invalid_utf8_jsonl_is_an_error_naming_the_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_bytes(b'{"text": "a b c"}\n{"text": "x \xff y"}\n')
    r = _run_isolated(tmp_path, "jsonl-strict", p)
    assert r.returncode == 0, r.stderr[-400:]
    assert "ERROR" in r.stdout and "bad.jsonl" in r.stdout and "line 2" in r.stdout


def test_invalid_utf8_jsonl_replace_is_counted(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_bytes(b'{"text": "a b c"}\n{"text": "x \xff y"}\n')
    r = _run_isolated(tmp_path, "jsonl-replace", p)
    assert r.returncode == 0, r.stderr[-400:]
    assert "COUNT 1" in r.stdout


def test_invalid_utf8_arrow_strings_are_an_error(tmp_path):
    r = _run_isolated(tmp_path, "arrow")
    assert r.returncode == 0, r.stderr[-400:]
    assert "ERROR" in r.stdout


# ------------------------------------------------------------------ bad arguments


def test_empty_corpus():
    for source in ([], [None, "", "   "], ["!!!", "..."]):
        with pytest.raises(NotEnoughCandidatesError) as ei:
            zipcal.select(source, 1, min_tokens=1)
        check(ei, NotEnoughCandidatesError, ValueError, "0 usable candidates")


def test_fewer_candidates_than_n():
    with pytest.raises(NotEnoughCandidatesError) as ei:
        zipcal.select(DOCS + ["short"], 4, min_tokens=2)
    msg = check(ei, NotEnoughCandidatesError, ValueError, "only 3", "n = 4", "min_tokens=2")
    assert "1 shorter" in msg
    with pytest.raises(NotEnoughCandidatesError):
        zipcal.select(DOCS, 2, min_tokens=1, strategy="random", draw=1)


@pytest.mark.parametrize("n", [0, -1, 1.5, True, "3", None])
def test_n_must_be_a_positive_integer(n):
    with pytest.raises(InvalidArgumentError) as ei:
        zipcal.select(DOCS, n, min_tokens=1)
    check(ei, InvalidArgumentError, ValueError, "n must be")


@pytest.mark.parametrize("seq_len", [0, -5])
def test_seq_len_must_be_positive(seq_len):
    with pytest.raises(InvalidArgumentError) as ei:
        zipcal.select(DOCS, 1, seq_len=seq_len)
    check(ei, InvalidArgumentError, ValueError, "seq_len")
    with pytest.raises(InvalidArgumentError):
        zipcal.select(DOCS, 1, min_tokens=1, tokenizer="gpt2").to_input_ids(seq_len)


def test_unknown_strategy_lists_available():
    with pytest.raises(InvalidArgumentError) as ei:
        zipcal.select(DOCS, 1, strategy="greedy-magic", min_tokens=1)
    check(ei, InvalidArgumentError, ValueError, "greedy-magic", "zipcal", "random", "zipcal-zipf")


def test_unknown_unit_and_other_options():
    with pytest.raises(InvalidArgumentError) as ei:
        zipcal.select(DOCS, 1, unit="sentence")
    check(ei, InvalidArgumentError, ValueError, "sentence")
    with pytest.raises(InvalidArgumentError):
        zipcal.select(DOCS, 1, min_tokens=1, text_split="words")
    with pytest.raises(InvalidArgumentError):
        zipcal.select(DOCS, 1, min_tokens=1, encoding_errors="ignore")
    with pytest.raises(InvalidArgumentError):
        zipcal.select(DOCS, 1, min_tokens=-1)
    with pytest.raises(InvalidArgumentError):
        zipcal.select(DOCS, 1, min_tokens=1, threads=0)
    with pytest.raises(InvalidArgumentError) as ei:
        zipcal.select(DOCS, 1, min_tokens=1, flavour="x")
    check(ei, InvalidArgumentError, ValueError, "flavour")
    with pytest.raises(InvalidArgumentError):
        zipcal.select(DOCS, 1, min_tokens=1, strategy="random", draw=-1)
    with pytest.raises(InvalidArgumentError):
        zipcal.select(12345, 1)
    with pytest.raises(InvalidArgumentError):
        zipcal.select(b"raw bytes", 1)


def test_malformed_tokenizer_json(tmp_path):
    not_json = tmp_path / "tokenizer.json"
    not_json.write_text("this is { not json", encoding="utf-8")
    with pytest.raises(TokenizerError) as ei:
        zipcal.select(DOCS, 1, tokenizer=str(not_json))
    check(ei, TokenizerError, ValueError, str(not_json), "JSON")
    other = tmp_path / "other" / "tokenizer.json"
    other.parent.mkdir()
    other.write_text(json.dumps({"model": {"type": "Nonsense"}, "hello": [1, 2]}), encoding="utf-8")
    with pytest.raises(TokenizerError) as ei:
        zipcal.select(DOCS, 1, tokenizer=str(other))
    check(ei, TokenizerError, ValueError, str(other), "tokenizer")
    # the folder form names the folder's file too
    with pytest.raises(TokenizerError):
        zipcal.select(DOCS, 1, tokenizer=other.parent)
    with pytest.raises(TokenizerError):
        zipcal.select(DOCS, 1, tokenizer='{"version": "1.0"}')
    empty_dir = tmp_path / "no_tok"
    empty_dir.mkdir()
    with pytest.raises(TokenizerError) as ei:
        zipcal.select(DOCS, 1, tokenizer=empty_dir)
    check(ei, TokenizerError, ValueError, "no_tok", "tokenizer.json")


def test_missing_tokenizer_path(tmp_path):
    missing = tmp_path / "nowhere" / "tokenizer.json"
    with pytest.raises(SourceNotFoundError) as ei:
        zipcal.select(DOCS, 1, tokenizer=str(missing))
    check(ei, SourceNotFoundError, FileNotFoundError, str(missing))
    with pytest.raises(InvalidArgumentError):
        zipcal.select(DOCS, 1, tokenizer=3.5)


def test_to_input_ids_in_words_mode_needs_a_tokenizer():
    sel = zipcal.select(DOCS, 2, min_tokens=1)
    with pytest.raises(TokenizerError) as ei:
        sel.to_input_ids(8)
    check(ei, TokenizerError, ValueError, "words", "tokenizer")
    with pytest.raises(TokenizerError):
        sel.to_dataset(8)
    # with a tokenizer it works
    batch = sel.to_input_ids(8, tokenizer="gpt2", return_tensors="np")
    assert batch["input_ids"].shape == (2, 8)


def test_packing_and_output_arguments(tmp_path):
    sel = zipcal.select(DOCS, 2, min_tokens=1, tokenizer="gpt2")
    with pytest.raises(InvalidArgumentError):
        sel.to_input_ids(8, policy="pack-it")
    with pytest.raises(InvalidArgumentError):
        sel.to_input_ids(8, return_tensors="tf")
    with pytest.raises(InvalidArgumentError) as ei:
        sel.save(tmp_path / "out.csv")
    check(ei, InvalidArgumentError, ValueError, "out.csv", "csv")
    assert not list(tmp_path.iterdir())


def test_core_errors_map_to_zipcal_classes():
    from zipcal import _core

    seg = _core.Segmenter.words()
    with pytest.raises(InvalidArgumentError):
        _core.Corpus(seg, unit="para")
    with pytest.raises(InvalidArgumentError):
        _core.Corpus(seg, unit="window", seq_len=0)
    c = _core.Corpus(seg, min_tokens=1)
    c.add_texts(["a b", "c"], 0)
    with pytest.raises(InvalidArgumentError):
        c.greedy(0)
    with pytest.raises(NotEnoughCandidatesError):
        c.greedy(3)
    with pytest.raises(InvalidArgumentError):
        c.greedy(1, "cubic")
    with pytest.raises(InvalidArgumentError):
        c.candidate_types(5)
    with pytest.raises(InvalidArgumentError):
        c.coverage([0, 9])
    with pytest.raises(InputError):
        c.add_arrow(pa.array([1, 2]), 2)
    with pytest.raises(TokenizerError):
        _core.Segmenter.from_json("[]", "x")
    with pytest.raises(TokenizerError):
        _core.Segmenter.from_file("/nonexistent/tokenizer.json")


# ------------------------------------------------------------------ CLI arguments


def _cli_error(capsys, argv):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    lines = [l for l in err.splitlines() if l.strip()]
    assert rc == 2, (rc, out, err)
    assert len(lines) == 1, err
    assert lines[0].startswith("zipcal: error: ")
    assert "Traceback" not in err
    return lines[0]


def test_cli_argument_errors(tmp_path, capsys):
    src = tmp_path / "docs.txt"
    src.write_text("\n".join(DOCS) + "\n", encoding="utf-8")
    base = ["select", str(src), "--min-tokens", "1", "--text-split", "line"]
    assert "n must be" in _cli_error(capsys, base + ["-n", "0"])
    assert "n must be" in _cli_error(capsys, base + ["-n", "-3"])
    assert "seq_len" in _cli_error(capsys, base + ["--seq-len", "0"])
    assert "unknown strategy" in _cli_error(capsys, base + ["-n", "1", "--strategy", "nope"])
    assert "only 3" in _cli_error(capsys, base + ["-n", "5"])
    assert "KEY=VALUE" in _cli_error(capsys, base + ["-n", "1", "--option", "novalue"])
    assert "unexpected keyword" in _cli_error(capsys, base + ["-n", "1", "--option", "foo=1"])
    bad_tok = tmp_path / "tokenizer.json"
    bad_tok.write_text("{{{", encoding="utf-8")
    assert str(bad_tok) in _cli_error(capsys, base + ["-n", "1", "--tokenizer", str(bad_tok)])
    missing_tok = tmp_path / "missing" / "tokenizer.json"
    assert str(missing_tok) in _cli_error(capsys, base + ["-n", "1", "--tokenizer", str(missing_tok)])
    assert "out.csv" in _cli_error(capsys, base + ["-n", "1", "-o", str(tmp_path / "out.csv")])
    assert not (tmp_path / "out.csv").exists()


def test_cli_usage_errors_exit_2(capsys):
    # argparse rejects unknown choices itself (usage + message), also with exit status 2
    with pytest.raises(SystemExit) as ei:
        cli.main(["select", "--unit", "sentence"])
    assert ei.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err and "Traceback" not in err
    assert cli.main([]) == 2

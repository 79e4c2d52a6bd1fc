"""Calibration manifests: ``<output>.manifest.json`` beside every saved selection, and
``zipcal select --verify MANIFEST``."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import random
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import zipcal
from zipcal import cli
from zipcal import manifest as mf

WORDS = [f"w{i}" for i in range(2500)] + ["the", "of", "and", "a", "to", "in"]


def _doc(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 90)))


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    """A folder with a text file and a JSONL file; the tests run in tmp_path so that
    the inputs are named by relative paths, as a user would."""
    rng = random.Random(7)
    d = tmp_path / "corpus"
    d.mkdir()
    (d / "a.txt").write_text("\n".join(_doc(rng) for _ in range(150)) + "\n", encoding="utf-8")
    with open(d / "b.jsonl", "w", encoding="utf-8") as f:
        for _ in range(150):
            f.write(json.dumps({"text": _doc(rng), "id": 1}) + "\n")
    monkeypatch.chdir(tmp_path)
    return Path("corpus")


SELECT = ["-n", "6", "--seq-len", "64", "-q"]


def _run(capsys, argv):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def _select(capsys, inputs, output, *extra):
    rc, out, err = _run(capsys, ["select", *map(str, inputs), *SELECT, *extra, "-o", str(output)])
    assert rc == 0, err
    return json.loads(Path(mf.manifest_path(output)).read_text(encoding="utf-8"))


def _sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _rows_hash(rows) -> str:
    h = hashlib.sha256()
    for r in rows:
        h.update((json.dumps(list(r), ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8"))
    return h.hexdigest()


def test_manifest_fields_and_hashes(corpus, capsys):
    out = Path("out") / "calib.parquet"
    m = _select(capsys, [corpus], out, "--weighting", "zipf")
    assert m["manifest_version"] == 1 and m["zipcal_version"] == zipcal.__version__ and m["created"].endswith("Z")
    files = [str(corpus / "a.txt"), str(corpus / "b.jsonl")]
    assert [i["name"] for i in m["inputs"]] == files
    for rec, f in zip(m["inputs"], files):
        assert rec["bytes"] == Path(f).stat().st_size and rec["sha256"] == _sha(f)
    o = m["input_options"]
    assert o["spec"] == [str(corpus)] and o["seq_len"] == 64 and o["min_tokens"] == 16 and o["unit"] == "window"
    assert o["text_column"] == "text" and o["max_candidates"] is None
    assert m["tokenizer"]["name"] == "words" and m["tokenizer"]["sha256"] is None
    assert (m["strategy"], m["strategy_options"], m["seed"], m["n"], m["seq_len"]) == (
        "zipcal",
        {"weighting": "zipf"},
        0,
        6,
        64,
    )
    assert not [k for k in m["stats"] if k.endswith("_seconds")]
    assert m["stats"]["n"] == 6 and m["stats"]["weighting"] == "zipf"
    t = pq.read_table(out)
    assert m["output"]["name"] == "calib.parquet" and m["output"]["format"] == "parquet"
    assert m["output"]["rows"] == t.num_rows
    assert m["output"]["file_sha256"] == _sha(out)
    cols = [t.column(c).to_pylist() for c in ("source", "source_row", "window", "tokens", "text")]
    assert m["output"]["rows_sha256"] == _rows_hash(zip(*cols))
    cmd = m["command"]
    assert cmd[:2] == ["zipcal", "select"] and cmd[-1] == str(corpus) and "--weighting" in cmd
    assert "-o" not in cmd and "-q" not in cmd


def test_same_input_and_seed_give_the_same_manifest(corpus, capsys):
    a = _select(capsys, [corpus], Path("one") / "calib.parquet", "--strategy", "random", "--seed", "3")
    b = _select(capsys, [corpus], Path("two") / "calib.parquet", "--strategy", "random", "--seed", "3")
    a.pop("created"), b.pop("created")
    assert a == b
    # the API writes the same manifest, command included
    sel = zipcal.select(str(corpus), 6, seq_len=64, strategy="random", seed=3)
    sel.save(Path("three") / "calib.parquet")
    c = json.loads(Path("three/calib.parquet.manifest.json").read_text(encoding="utf-8"))
    c.pop("created")
    assert c == a


def test_verify_passes_and_writes_nothing(corpus, capsys):
    out = Path("pub") / "calib.parquet"
    _select(capsys, [corpus], out)
    before = {p.name: p.read_bytes() for p in Path("pub").iterdir()}
    rc, stdout, err = _run(capsys, ["select", "--verify", mf.manifest_path(out)])
    assert rc == 0, err
    rows = pq.read_table(out).num_rows
    assert stdout.strip() == f"verified: {rows} rows, same selection"
    assert {p.name: p.read_bytes() for p in Path("pub").iterdir()} == before


@pytest.mark.parametrize(
    "extra",
    [["--max-candidates", "40"], ["--strategy", "random", "--draw", "1", "--seed", "4"], ["--unit", "doc"]],
)
def test_verify_reproduces_bounded_pools_and_strategy_options(corpus, capsys, extra):
    out = Path("calib.jsonl")
    m = _select(capsys, [corpus / "a.txt", corpus / "b.jsonl"], out, *extra)
    assert all(a in m["command"] for a in extra)
    rc, stdout, err = _run(capsys, ["select", "--verify", mf.manifest_path(out)])
    assert rc == 0 and "same selection" in stdout, err


def test_verify_fails_when_one_byte_of_an_input_changes(corpus, capsys):
    out = Path("calib.jsonl")
    _select(capsys, [corpus], out)
    f = corpus / "b.jsonl"
    data = bytearray(f.read_bytes())
    data[10] = ord("x") if data[10] != ord("x") else ord("y")
    f.write_bytes(bytes(data))
    rc, _, err = _run(capsys, ["select", "--verify", mf.manifest_path(out)])
    assert rc == 1
    assert len(err.strip().splitlines()) == 1
    assert f"input {f} changed: sha256" in err
    # a size change is named too
    f.write_bytes(bytes(data) + b"\n")
    rc, _, err = _run(capsys, ["select", "--verify", mf.manifest_path(out)])
    assert rc == 1 and f"input {f} changed" in err and "bytes" in err


def test_verify_fails_when_the_recorded_selection_hash_is_tampered_with(corpus, capsys):
    out = Path("calib.parquet")
    m = _select(capsys, [corpus], out)
    m["output"]["rows_sha256"] = "0" * 64
    Path(mf.manifest_path(out)).write_text(json.dumps(m), encoding="utf-8")
    rc, _, err = _run(capsys, ["select", "--verify", mf.manifest_path(out)])
    assert rc == 1
    assert "different selection" in err and "matches the published file" in err


def test_verify_names_the_first_differing_row(corpus, capsys):
    out = Path("calib.parquet")
    m = _select(capsys, [corpus], out, "--strategy", "random", "--seed", "1")
    k = m["command"].index("--seed")
    m["command"][k + 1] = "2"
    Path(mf.manifest_path(out)).write_text(json.dumps(m), encoding="utf-8")
    rc, _, err = _run(capsys, ["select", "--verify", mf.manifest_path(out)])
    assert rc == 1
    assert "first differing row 0: published (source corpus/" in err
    assert "different statistics: seed 2 != recorded 1" in err.splitlines()[1]


def test_verify_fails_when_the_published_file_or_the_input_set_changes(corpus, capsys):
    out = Path("calib.parquet")
    _select(capsys, [corpus], out)
    (corpus / "c.txt").write_text(_doc(random.Random(1)) + "\n", encoding="utf-8")
    rc, _, err = _run(capsys, ["select", "--verify", mf.manifest_path(out)])
    assert rc == 1 and f"input set changed: {corpus / 'c.txt'} is new" in err
    (corpus / "c.txt").unlink()
    t = pq.read_table(out)
    pq.write_table(t.replace_schema_metadata({b"edited": b"1"}), out)
    rc, _, err = _run(capsys, ["select", "--verify", mf.manifest_path(out)])
    assert rc == 1 and "published file calib.parquet changed" in err


def test_jsonl_and_parquet_outputs_have_the_same_selection_hash(corpus, capsys):
    p = _select(capsys, [corpus], Path("calib.parquet"))
    j = _select(capsys, [corpus], Path("calib.jsonl"))
    assert p["output"]["rows_sha256"] == j["output"]["rows_sha256"]
    assert p["output"]["file_sha256"] != j["output"]["file_sha256"]
    assert j["output"]["format"] == "jsonl" and j["output"]["file_sha256"] == _sha("calib.jsonl")
    assert mf.rows_sha256(mf.file_rows("calib.jsonl")) == mf.rows_sha256(mf.file_rows("calib.parquet"))
    assert p["stats"] == j["stats"]


def test_save_without_manifest(tmp_path):
    docs = [_doc(random.Random(i)) for i in range(40)]
    sel = zipcal.select(docs, 3, seq_len=64)
    path = tmp_path / "sel.parquet"
    sel.save(path)
    assert Path(mf.manifest_path(path)).is_file()
    sel.save(path, manifest=False)  # a manifest of an earlier file would lie: it goes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sel.parquet"]
    sel.save(tmp_path / "other.jsonl", manifest=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.jsonl", "sel.parquet"]
    # an in-memory source: described, not hashed, and no command to re-run
    m = sel.manifest()
    assert m["inputs"][0]["in_memory"] and m["command"] is None and m["output"]["name"] is None
    assert m["output"]["rows_sha256"] == mf.rows_sha256(mf.selection_rows(sel))
    sel.save(path)
    rc = cli.main(["select", "--verify", mf.manifest_path(path)])
    assert rc == 2


def test_failed_selection_leaves_no_output_and_no_manifest(corpus, capsys, monkeypatch):
    rc, _, err = _run(capsys, ["select", str(corpus), "-n", "100000", "--seq-len", "64", "-q", "-o", "calib.parquet"])
    assert rc == 2 and "usable candidates" in err
    assert not Path("calib.parquet").exists() and not Path(mf.manifest_path("calib.parquet")).exists()
    # hashing fails after the selection: neither file is written, an earlier one is kept
    Path("calib.parquet").write_bytes(b"previous")

    def broken(*a, **k):
        raise zipcal.InputError("corpus/a.txt: cannot hash the input (gone)")

    monkeypatch.setattr(mf, "describe_inputs", broken)
    rc, _, err = _run(capsys, ["select", str(corpus), *SELECT, "-o", "calib.parquet"])
    assert rc == 2 and "cannot hash" in err
    assert Path("calib.parquet").read_bytes() == b"previous"
    assert sorted(p.name for p in Path(".").iterdir()) == ["calib.parquet", "corpus"]


def test_missing_or_invalid_manifest_is_one_line_exit_2(tmp_path, capsys):
    rc, _, err = _run(capsys, ["select", "--verify", str(tmp_path / "none.manifest.json")])
    assert rc == 2 and err.count("\n") == 1 and "no such manifest" in err
    bad = tmp_path / "bad.manifest.json"
    bad.write_text("{not json", encoding="utf-8")
    rc, _, err = _run(capsys, ["select", "--verify", str(bad)])
    assert rc == 2 and err.count("\n") == 1 and "invalid JSON" in err
    bad.write_text(json.dumps({"manifest_version": 1, "inputs": []}), encoding="utf-8")
    rc, _, err = _run(capsys, ["select", "--verify", str(bad)])
    assert rc == 2 and err.count("\n") == 1 and "missing" in err
    rc, _, err = _run(capsys, ["select", "x.txt", "--verify", str(bad)])
    assert rc == 2 and "takes no INPUT" in err


def test_other_zipcal_version_warns_but_verifies(corpus, capsys):
    out = Path("calib.parquet")
    m = _select(capsys, [corpus], out)
    m["zipcal_version"] = "0.0.1"
    Path(mf.manifest_path(out)).write_text(json.dumps(m), encoding="utf-8")
    rc, stdout, err = _run(capsys, ["select", "--verify", mf.manifest_path(out)])
    assert rc == 0 and "verified:" in stdout
    assert "written by zipcal 0.0.1" in err


def test_tokenizer_file_is_hashed_and_checked(corpus, capsys):
    tokenizers = pytest.importorskip("tokenizers")
    vocab = {"[UNK]": 0, **{w: i + 1 for i, w in enumerate(WORDS)}}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tok.save("tokenizer.json")
    out = Path("calib.parquet")
    m = _select(capsys, [corpus], out, "--tokenizer", "tokenizer.json")
    assert m["tokenizer"]["path"] == "tokenizer.json" and m["tokenizer"]["sha256"] == _sha("tokenizer.json")
    rc, _, err = _run(capsys, ["select", "--verify", mf.manifest_path(out)])
    assert rc == 0, err
    Path("tokenizer.json").write_text(Path("tokenizer.json").read_text(encoding="utf-8") + " ", encoding="utf-8")
    rc, _, err = _run(capsys, ["select", "--verify", mf.manifest_path(out)])
    assert rc == 1 and "tokenizer tokenizer.json changed" in err


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_remote_inputs_record_size_and_date_not_a_hash(corpus, capsys):
    handler = functools.partial(_QuietHandler, directory=str(corpus))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/a.txt"
        out = Path("calib.parquet")
        m = _select(capsys, [url], out)
        rec = m["inputs"][0]
        assert rec["name"] == url and rec["remote"] and rec["sha256"] is None
        assert rec["bytes"] == (corpus / "a.txt").stat().st_size and rec["last_modified"]
        rc, stdout, err = _run(capsys, ["select", "--verify", mf.manifest_path(out)])
        assert rc == 0 and "verified:" in stdout, err
        with open(corpus / "a.txt", "a", encoding="utf-8") as f:
            f.write("one more line of text\n")
        rc, _, err = _run(capsys, ["select", "--verify", mf.manifest_path(out)])
        assert rc == 1 and f"input {url} changed: bytes" in err
    finally:
        server.shutdown()

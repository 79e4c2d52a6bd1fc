"""Compressed text and JSON-lines shards, and inputs that are not text: the same
selection as the plain file, streamed; errors that name the file and what it is."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import pickle
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import zipcal
from zipcal.errors import InputError
from zipcal.sources import ReadOptions, iter_batches

KW = dict(seq_len=24, min_tokens=4, text_split="line")


def _compress(data: bytes, path: Path) -> Path:
    codec = path.suffix
    if codec == ".gz":
        path.write_bytes(gzip.compress(data))
    elif codec == ".bz2":
        path.write_bytes(bz2.compress(data))
    elif codec == ".xz":
        path.write_bytes(lzma.compress(data))
    else:
        with pa.CompressedOutputStream(str(path), {".zst": "zstd", ".lz4": "lz4"}[codec]) as f:
            f.write(data)
    return path


@pytest.fixture(scope="module")
def docs(wikitext_lines):
    return [l.strip() for l in wikitext_lines[:1500] if len(l.split()) > 8]


@pytest.fixture(scope="module")
def plain(tmp_path_factory, docs):
    d = tmp_path_factory.mktemp("plain")
    jsonl = d / "c.jsonl"
    jsonl.write_text("".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(docs)), encoding="utf-8")
    txt = d / "c.txt"
    txt.write_text("\n".join(docs) + "\n", encoding="utf-8")
    return {"jsonl": (jsonl, zipcal.select(str(jsonl), 16, **KW)), "txt": (txt, zipcal.select(str(txt), 16, **KW))}


@pytest.mark.parametrize("codec", [".gz", ".zst", ".bz2", ".xz", ".lz4"])
@pytest.mark.parametrize("kind,name", [("jsonl", "c.jsonl"), ("jsonl", "c.json"), ("txt", "c.txt")])
def test_compressed_file_selects_like_the_plain_one(tmp_path, plain, codec, kind, name):
    src, want = plain[kind]
    path = _compress(src.read_bytes(), tmp_path / (name + codec))
    sel = zipcal.select(str(path), 16, **KW)
    assert sel.indices.tolist() == want.indices.tolist() and sel.texts == want.texts
    assert sel.pool.report["rows"] == want.pool.report["rows"]
    assert set(sel.sources) == {str(path)}


def test_c4_style_folder_and_glob_of_gzip_shards(tmp_path, docs):
    shards = tmp_path / "c4"
    shards.mkdir()
    parts = [docs[i::3] for i in range(3)]
    for k, part in enumerate(parts):
        data = "".join(json.dumps({"text": t, "url": f"u{k}", "timestamp": "2019"}) + "\n" for t in part).encode()
        _compress(data, shards / f"c4-train.{k:05d}-of-00003.json.gz")
    (shards / "README").write_text("not a shard")
    by_folder = zipcal.select(str(shards), 16, **KW)
    by_glob = zipcal.select(str(shards / "*.json.gz"), 16, **KW)
    flat = [t for part in parts for t in part]
    assert by_folder.pool.report["rows"] == len(flat)
    assert by_folder.indices.tolist() == by_glob.indices.tolist()
    assert by_folder.texts == zipcal.select(flat, 16, **KW).texts


def test_streams_are_read_a_block_at_a_time(tmp_path, docs):
    """A large compressed file arrives in batches, not as one table."""
    data = "".join(json.dumps({"text": t}) + "\n" for t in docs * 30).encode()
    path = _compress(data, tmp_path / "big.jsonl.zst")
    batches = list(iter_batches(str(path), ReadOptions(batch_rows=4096)))
    assert len(batches) > 3 and sum(len(b.array) for b in batches) == len(docs) * 30
    assert [b.first_row for b in batches] == [sum(len(x.array) for x in batches[:k]) for k in range(len(batches))]


def _cli_error(path: Path) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "zipcal", "select", str(path), "-n", "1", "-q"], capture_output=True, text=True
    )
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert str(path) in lines[0]
    return lines[0]


def test_binary_inputs_are_named_not_replaced(tmp_path):
    png = tmp_path / "image.txt"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    assert "looks like a PNG image" in _cli_error(png)
    pkl = tmp_path / "model.jsonl"
    pkl.write_bytes(pickle.dumps({"weights": list(range(100))}, protocol=4))
    assert "looks like a Python pickle" in _cli_error(pkl)
    zipped = tmp_path / "docs.txt"
    zipped.write_bytes(b"PK\x03\x04" + b"\x00" * 200)
    assert "ZIP archive" in _cli_error(zipped)
    pq.write_table(pa.table({"text": ["a"]}), tmp_path / "t.parquet")
    misnamed = tmp_path / "t.jsonl"
    misnamed.write_bytes((tmp_path / "t.parquet").read_bytes())
    assert "Parquet file" in _cli_error(misnamed)
    nul = tmp_path / "blob.txt"
    nul.write_bytes(b"some text\x00\x01\x02 then binary")
    assert "NUL bytes" in _cli_error(nul)
    zcompress = tmp_path / "old.txt"
    zcompress.write_bytes(b"\x1f\x9d\x90" + b"x" * 50)
    msg = _cli_error(zcompress)
    assert "Unix compress" in msg and "encoding-errors" not in msg


def test_compression_errors_name_file_and_line(tmp_path, docs):
    fake = tmp_path / "plain.json.gz"
    fake.write_text('{"text": "not compressed at all"}\n')
    assert "says gzip-compressed" in _cli_error(fake)
    wrong = _compress(b'{"text": "zstd inside"}\n', tmp_path / "wrong.zst")
    renamed = tmp_path / "wrong.jsonl.gz"
    renamed.write_bytes(wrong.read_bytes())
    assert "looks like Zstandard data" in _cli_error(renamed)
    inner = _compress(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, tmp_path / "img.txt.xz")
    assert "after xz decompression" in _cli_error(inner)
    lines = [json.dumps({"text": t}) for t in docs[:50]]
    lines[36] = '{"text": "broken'
    bad = _compress(("\n".join(lines) + "\n").encode(), tmp_path / "bad.jsonl.bz2")
    assert "line 37: invalid JSON" in _cli_error(bad)
    blob = gzip.compress("".join(json.dumps({"text": t}) + "\n" for t in docs * 40).encode())
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(blob[: len(blob) // 2])
    assert "damaged gzip stream" in _cli_error(cut)
    (tmp_path / "x.parquet.gz").write_bytes(gzip.compress(b"PAR1"))
    with pytest.raises(InputError, match="compress their own"):
        zipcal.select(str(tmp_path / "x.parquet.gz"), 1)


def test_keep_texts_false_rereads_compressed_rows(tmp_path, plain):
    src, want = plain["jsonl"]
    path = _compress(src.read_bytes(), tmp_path / "c.jsonl.gz")
    lean = zipcal.select(str(path), 16, keep_texts=False, **KW)
    assert lean.pool.texts_kept is False and lean.texts == want.texts


# ------------------------------------------------------------------ tabular text formats


def test_csv_and_tsv_with_a_text_column(tmp_path, docs):
    import csv

    rows = [(i, d.replace(" . ", ' . "quoted", \n'), i % 7) for i, d in enumerate(docs[:600])]
    with open(tmp_path / "c.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text", "label"])
        w.writerows(rows)
    with open(tmp_path / "c.tsv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(["id", "body", "label"])
        w.writerows(rows)
    _compress((tmp_path / "c.csv").read_bytes(), tmp_path / "c.csv.zst")
    want = zipcal.select([r[1] for r in rows], 16, **KW)
    for path, col in (("c.csv", "text"), ("c.tsv", "body"), ("c.csv.zst", "text")):
        sel = zipcal.select(str(tmp_path / path), 16, text_column=col, **KW)
        assert sel.texts == want.texts and sel.pool.report["rows"] == len(rows), path
    msg = _cli_error(tmp_path / "c.tsv")
    assert "no column 'text'" in msg and "'body'" in msg


def test_a_datasets_save_to_disk_folder(tmp_path, docs):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"text": docs[:700], "id": list(range(700))})
    ds.save_to_disk(str(tmp_path / "saved"), num_shards=3)
    sel = zipcal.select(str(tmp_path / "saved"), 16, **KW)
    assert sel.pool.report["rows"] == 700
    assert sel.texts == zipcal.select(docs[:700], 16, **KW).texts
    datasets.DatasetDict({"train": ds, "test": ds}).save_to_disk(str(tmp_path / "dd"))
    msg = _cli_error(tmp_path / "dd")
    assert "DatasetDict" in msg and "train" in msg

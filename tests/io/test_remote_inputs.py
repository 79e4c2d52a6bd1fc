"""Remote inputs: an S3-compatible server (moto) started on 127.0.0.1, a plain web
server, and an fsspec filesystem. The same selection as the local copy of each
corpus; listing by prefix and by glob; one-line errors (exit 2) for a missing
object, a missing bucket, a glob that matches nothing."""

from __future__ import annotations

import functools
import gzip
import http.server
import json
import logging
import os
import subprocess
import sys
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import zipcal
from zipcal import remote
from zipcal.errors import InvalidArgumentError, SourceNotFoundError
from zipcal.sources import expand_paths

KW = dict(seq_len=24, min_tokens=4, text_split="line", tokenizer="words")
BUCKET = "corpus"


@pytest.fixture(scope="module")
def docs(wikitext_lines):
    return [l.strip() for l in wikitext_lines[:1200] if len(l.split()) > 8]


@pytest.fixture(scope="module")
def local(tmp_path_factory, docs):
    """The corpus as local files: two .json.gz shards, a note file, and a Parquet
    file of several row groups in a sub-folder."""
    d = tmp_path_factory.mktemp("corpus")
    half = len(docs) // 2
    for k, part in enumerate((docs[:half], docs[half:])):
        body = "".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(part))
        (d / f"c4-train.{k:05d}-of-00002.json.gz").write_bytes(gzip.compress(body.encode()))
    (d / "README").write_text("not a corpus file\n")
    (d / "parquet" / "en").mkdir(parents=True)
    pq.write_table(
        pa.table({"text": docs, "n": list(range(len(docs)))}),
        d / "parquet" / "en" / "part-0.parquet",
        row_group_size=100,
    )
    return d


@pytest.fixture(scope="module")
def s3(local):
    """A moto S3 server on 127.0.0.1 holding the local corpus under ``s3://corpus/``;
    yields the environment that points the AWS SDK at it."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        for p in sorted(local.rglob("*")):
            if p.is_file():
                client.upload_file(str(p), BUCKET, p.relative_to(local).as_posix())
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


def _same(a, b):
    assert list(a) == list(b) and len(a) > 0
    assert a.stats["types_covered"] == b.stats["types_covered"]


def test_s3_glob_of_gzip_shards_selects_like_the_local_files(s3, local):
    want = zipcal.select(str(local / "*.json.gz"), 12, **KW)
    got = zipcal.select(f"s3://{BUCKET}/*.json.gz", 12, **KW)
    _same(got, want)
    assert set(got.to_arrow().column("source").to_pylist()) <= {
        f"s3://{BUCKET}/c4-train.{k:05d}-of-00002.json.gz" for k in range(2)
    }


def test_s3_prefix_is_read_like_a_folder(s3, local):
    files = expand_paths(f"s3://{BUCKET}/")
    assert files == [f"s3://{BUCKET}/c4-train.{k:05d}-of-00002.json.gz" for k in range(2)]  # README left out
    assert expand_paths(f"s3://{BUCKET}/parquet/en") == [f"s3://{BUCKET}/parquet/en/part-0.parquet"]
    assert expand_paths(f"s3://{BUCKET}/**/*.parquet") == [f"s3://{BUCKET}/parquet/en/part-0.parquet"]


def test_s3_parquet_without_kept_texts_rereads_the_picks_from_the_store(s3, local):
    want = zipcal.select(str(local / "parquet" / "en" / "part-0.parquet"), 12, keep_texts=False, **KW)
    got = zipcal.select(f"s3://{BUCKET}/**/*.parquet", 12, keep_texts=False, **KW)
    _same(got, want)
    assert set(got.to_arrow().column("source").to_pylist()) == {f"s3://{BUCKET}/parquet/en/part-0.parquet"}


def test_s3_list_of_urls_and_mixed_local(s3, local):
    shards = [f"s3://{BUCKET}/c4-train.00000-of-00002.json.gz", str(local / "c4-train.00001-of-00002.json.gz")]
    want = zipcal.select(str(local / "*.json.gz"), 8, **KW)
    _same(zipcal.select(shards, 8, **KW), want)


def _cli(args, env):
    return subprocess.run(
        [sys.executable, "-m", "zipcal", "select", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


@pytest.mark.parametrize(
    "url,message",
    [
        (f"s3://{BUCKET}/c4-train.00009-of-00002.json.gz", "no such object"),
        ("s3://no-such-bucket/shard.jsonl.gz", "no such bucket 'no-such-bucket'"),
        (f"s3://{BUCKET}/nothing-*.parquet", "the pattern matches no object"),
    ],
)
def test_cli_s3_errors_are_one_line_and_exit_2(s3, tmp_path, url, message):
    out = tmp_path / "picks.jsonl"
    r = _cli([url, "-n", "4", "--tokenizer", "words", "-o", str(out)], s3)
    err = r.stderr.strip()
    assert r.returncode == 2, r.stderr
    assert err.count("\n") == 0 and url in err and message in err, err
    assert "Traceback" not in r.stderr and not out.exists()


def test_cli_selects_from_s3(s3, tmp_path):
    out = tmp_path / "picks.jsonl"
    r = _cli([f"s3://{BUCKET}/*.json.gz", "-n", "4", "--tokenizer", "words", "--seq-len", "32", "-o", str(out)], s3)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    assert rows and all(row["source"].startswith(f"s3://{BUCKET}/") for row in rows)


def test_credentials_never_appear_in_errors(s3):
    with pytest.raises(SourceNotFoundError) as e:
        zipcal.select("s3://no-such-bucket/x.jsonl", 4, **KW)
    assert "testing" not in str(e.value)


# ---------------------------------------------------------------- http(s)


@pytest.fixture(scope="module")
def web(local):
    handler = functools.partial(_QuietHandler, directory=str(local))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_http_jsonl_gz_and_parquet_select_like_local(web, local):
    shard = "c4-train.00000-of-00002.json.gz"
    _same(zipcal.select(f"{web}/{shard}", 8, **KW), zipcal.select(str(local / shard), 8, **KW))
    pqf = "parquet/en/part-0.parquet"
    _same(
        zipcal.select(f"{web}/{pqf}", 8, keep_texts=False, **KW),
        zipcal.select(str(local / pqf), 8, keep_texts=False, **KW),
    )


def test_http_missing_file_and_glob(web):
    with pytest.raises(SourceNotFoundError, match="no such object"):
        zipcal.select(f"{web}/missing.jsonl", 4, **KW)
    with pytest.raises(InvalidArgumentError, match="cannot be listed"):
        zipcal.select(f"{web}/*.jsonl", 4, **KW)


# ---------------------------------------------------------------- fsspec (the path hf:// takes)


def test_fsspec_filesystem_with_glob(local):
    fsspec = pytest.importorskip("fsspec")
    mem = fsspec.filesystem("memory")
    for k in range(2):
        name = f"c4-train.{k:05d}-of-00002.json.gz"
        mem.pipe(f"/zipcal-test/{name}", (local / name).read_bytes())
    got = zipcal.select("memory://zipcal-test/*.json.gz", 8, **KW)
    _same(got, zipcal.select(str(local / "*.json.gz"), 8, **KW))


def test_unknown_scheme_is_named():
    with pytest.raises(InvalidArgumentError, match="unknown URL scheme nosuchscheme://"):
        zipcal.select("nosuchscheme://bucket/x.jsonl", 4, **KW)


@pytest.mark.parametrize(
    "pattern,key,hit",
    [
        ("a/*.jsonl", "a/x.jsonl", True),
        ("a/*.jsonl", "a/b/x.jsonl", False),
        ("a/**/*.jsonl", "a/x.jsonl", True),
        ("a/**/*.jsonl", "a/b/c/x.jsonl", True),
        ("a/part-?.parquet", "a/part-1.parquet", True),
        ("a/part-?.parquet", "a/part-10.parquet", False),
        ("a/[!x]*.gz", "a/y.gz", True),
        ("a/[!x]*.gz", "a/x.gz", False),
        ("a/c4.json.gz", "a/c4xjson.gz", False),
    ],
)
def test_glob_over_keys(pattern, key, hit):
    assert bool(remote._glob_regex(pattern).match(key)) == hit


def test_a_list_of_url_like_documents_is_documents():
    from zipcal.sources import _looks_like_paths

    docs = ["http://a.b/c?d=1", "https://example.org/about"]
    assert not _looks_like_paths(docs)
    assert _looks_like_paths(["s3://bucket/c4/*.json.gz", "s3://bucket/c4/", "https://h/f.parquet?sig=1"])
    pool = zipcal.load_pool(docs, min_tokens=1, seq_len=16)
    assert pool.report["rows"] == 2

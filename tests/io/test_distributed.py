"""zipcal.distributed on a local two-worker Ray cluster: the merged pool and the
selection equal the single-machine ones on the same files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import zipcal
from zipcal import _core
from zipcal.errors import InputError, InvalidArgumentError

ray = pytest.importorskip("ray", reason="the test environment installs ray[data] (scripts/env.sh test)")
import zipcal.distributed as zd  # noqa: E402

WIKITEXT = Path(__file__).resolve().parents[3] / "shared" / "data" / "wikitext-2" / "valid.txt"

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _docs() -> list:
    text = WIKITEXT.read_text(encoding="utf-8")
    docs = [d.strip() for d in text.splitlines() if len(d.strip()) > 40]
    assert len(docs) > 600
    return docs[:900]


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    """Two Parquet files with small row groups, a JSONL file and a text file."""
    d = tmp_path_factory.mktemp("dist")
    docs = _docs()
    a, b, c, e = docs[:300], docs[300:550], docs[550:750], docs[750:]
    pq.write_table(pa.table({"id": list(range(len(a))), "text": a}), d / "a.parquet", row_group_size=40)
    tb = pa.table({"text": b[:100] + [None, ""] + b[100:]})
    pq.write_table(tb, d / "b.parquet", row_group_size=64)
    with open(d / "c.jsonl", "w", encoding="utf-8") as f:
        for t in c:
            f.write(json.dumps({"text": t, "meta": 1}) + "\n")
    (d / "d.txt").write_text("\n".join(t.replace("\n", " ") for t in e) + "\n", encoding="utf-8")
    return d


def _same(single: zipcal.Selection, dist: zipcal.Selection) -> None:
    np.testing.assert_array_equal(single.indices, dist.indices)
    np.testing.assert_array_equal(single.windows, dist.windows)
    assert single.texts == dist.texts
    assert single.sources == dist.sources
    np.testing.assert_array_equal(single.source_rows, dist.source_rows)
    if single.gains is not None:
        np.testing.assert_array_equal(single.gains, dist.gains)
    for k in ("types_covered", "types_available", "tokens_selected"):
        if k in single.stats:
            assert single.stats[k] == dist.stats[k], k


def _counts_by_name(pool: zipcal.Pool) -> dict:
    names = pool.corpus.type_names()
    return {names[i]: int(c) for i, c in enumerate(pool.counts) if c}


def test_plan_units_split_parquet_by_row_groups(corpus_dir):
    paths = sorted(str(p) for p in corpus_dir.iterdir())
    units = zd.plan_units(paths, "text", unit_bytes=1)  # one row group per unit
    parquet_a = [u for u in units if u.path.endswith("a.parquet")]
    assert len(parquet_a) == pq.ParquetFile(corpus_dir / "a.parquet").metadata.num_row_groups
    assert [u.index for u in units] == list(range(len(units)))
    opts = zipcal.sources.ReadOptions()
    texts = [t for u in parquet_a for b in zd.unit_batches(u, opts) for t in b.array.to_pylist()]
    assert texts == pq.read_table(corpus_dir / "a.parquet")["text"].to_pylist()
    firsts = [next(zd.unit_batches(u, opts)).first_row for u in parquet_a]
    assert firsts == [u.first_row for u in parquet_a] == list(range(0, 300, 40))
    whole = zd.plan_units(paths, "text")
    assert len(whole) == 4


@pytest.mark.parametrize(
    "tokenizer, unit, strategy",
    [
        ("words", "doc", "zipcal"),
        ("words", "window", "zipcal-zipf"),
        ("gpt2", "doc", "zipcal"),
        ("gpt2", "doc", "random"),
    ],
)
def test_distributed_equals_single_machine(cluster, corpus_dir, tokenizer, unit, strategy):
    src = str(corpus_dir / "*")
    kw = dict(tokenizer=tokenizer, unit=unit, seq_len=64, min_tokens=8)
    single_pool = zipcal.load_pool(src, **kw)
    dist_pool = zd.load_pool(src, unit_bytes=20_000, **kw)
    assert dist_pool.distributed["tasks"] > 6
    assert len(single_pool) == len(dist_pool)
    np.testing.assert_array_equal(single_pool.rows, dist_pool.rows)
    np.testing.assert_array_equal(single_pool.windows, dist_pool.windows)
    np.testing.assert_array_equal(single_pool.tokens, dist_pool.tokens)
    assert single_pool.report == dist_pool.report
    assert _counts_by_name(single_pool) == _counts_by_name(dist_pool)
    for seed in (0, 3):
        _same(
            zipcal.select(single_pool, 24, strategy=strategy, seed=seed),
            zipcal.select(dist_pool, 24, strategy=strategy, seed=seed),
        )


def test_capped_pool_certificate_and_growth(cluster, corpus_dir):
    src = [str(corpus_dir / "a.parquet"), str(corpus_dir / "b.parquet"), str(corpus_dir / "c.jsonl")]
    # Few long rows: candidates (windows of up to 512 words) differ a lot in size, so a
    # cap can hold the certificate; rows of 64 words make type sets too alike for it.
    for cap in (120, 12):  # 12 is too small: the certificate fails and the cap grows
        single = zipcal.select(src, 2, max_candidates=cap, min_tokens=8, seq_len=512)
        dist = zd.select(src, 2, max_candidates=cap, min_tokens=8, seq_len=512, unit_bytes=30_000)
        _same(single, dist)
        assert single.stats["n"] == 2 and single.stats["tokens_fed"] == 2 * 512
        assert single.info["certificate"] and dist.info["certificate"]
        assert single.info["max_candidates"] == dist.info["max_candidates"]
        assert dist.pool.report["evicted_candidates"] == single.pool.report["evicted_candidates"]
        if cap == 120:
            assert dist.pool.report["evicted_candidates"] > 0
    assert dist.info["max_candidates"] > 12  # grown after a failed certificate


def test_same_result_twice_and_texts_read_again(cluster, corpus_dir):
    src = str(corpus_dir / "*.parquet")
    one = zd.select(src, 10, seed=1, strategy="random", unit_bytes=10_000, min_tokens=8, seq_len=64)
    two = zd.select(src, 10, seed=1, strategy="random", unit_bytes=50_000, min_tokens=8, seq_len=64)
    _same(one, two)
    assert any(s.endswith("b.parquet") for s in one.sources)
    table = pq.read_table(corpus_dir / "b.parquet")["text"].to_pylist()
    for t, s, r, k in zip(one.texts, one.sources, one.source_rows, one.windows):
        if s.endswith("b.parquet"):
            # a sample's text is its window of the document: words k*64 to (k+1)*64
            assert t in table[r]
            assert _core.segment_words(t) == _core.segment_words(table[r])[k * 64 : (k + 1) * 64]


def test_errors_name_the_problem(cluster, corpus_dir, tmp_path):
    with pytest.raises(InvalidArgumentError, match="reads files"):
        zd.load_pool(["not", "files", 3])
    with pytest.raises(InputError, match="body"):
        zd.load_pool(str(corpus_dir / "a.parquet"), text_column="body")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine line of text here"}\n{"text": 5}\n', encoding="utf-8")
    with pytest.raises(InputError, match="bad.jsonl"):
        zd.load_pool(str(bad))
    raw = tmp_path / "latin1.txt"
    raw.write_bytes("caf\xe9 au lait and more words\n".encode("latin-1"))
    with pytest.raises(InputError, match="latin1.txt"):
        zd.load_pool(str(raw))


def test_cli_select_with_ray(cluster, corpus_dir, tmp_path):
    from zipcal.cli import main

    local, dist = tmp_path / "local.parquet", tmp_path / "ray.parquet"
    common = [str(corpus_dir / "*.parquet"), "-n", "12", "--min-tokens", "8", "--seq-len", "64", "-q"]
    assert main(["select", *common, "-o", str(local)]) == 0
    assert main(["select", *common, "-o", str(dist), "--ray"]) == 0
    assert pq.read_table(local).equals(pq.read_table(dist))
    assert pq.read_table(dist).num_rows == 12
    assert main(["select", "-n", "4", "--ray", "-q"]) != 0  # no files: a clear error, no traceback


def test_compressed_shards_on_ray_equal_local(cluster, tmp_path):
    import gzip

    docs = _docs()
    for k in range(3):
        data = "".join(json.dumps({"text": t}) + "\n" for t in docs[k::3]).encode()
        (tmp_path / f"shard-{k}.jsonl.gz").write_bytes(gzip.compress(data))
    (tmp_path / "notes.txt.xz").write_bytes(__import__("lzma").compress("\n".join(docs[:50]).encode()))
    kw = dict(seq_len=64, text_split="line")
    local = zipcal.select(str(tmp_path), 8, **kw)
    dist = zd.select(str(tmp_path), 8, **kw)
    _same(local, dist)
    assert local.pool.report["rows"] == len(docs) + 50

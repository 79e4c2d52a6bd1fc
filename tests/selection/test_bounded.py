"""Bounded-memory pools: top-M candidates with an exactness certificate, and pools
that keep no texts and re-read the selected rows."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import zipcal


def _corpus(tmp_path, docs=600):
    # Mostly small documents, a few large ones: the large ones win, small ones can be evicted.
    texts = []
    for i in range(docs):
        if i % 50 == 0:
            texts.append(" ".join(f"rare{i}_{k}" for k in range(60)))
        else:
            texts.append(f"common words here doc{i % 7} filler text number {i % 11} and more")
    path = tmp_path / "c.parquet"
    pq.write_table(pa.table({"text": texts}), path, row_group_size=97)
    return str(path)


# Rows as long as the large documents: each one fills a row, so n rows take n of them
# (the default 2048-token rows would take the whole pool).
ROW = 60


def test_capped_pool_gives_the_full_selection_with_certificate(tmp_path):
    path = _corpus(tmp_path)
    full = zipcal.select(path, n=10, min_tokens=1, seq_len=ROW)
    capped = zipcal.select(path, n=10, min_tokens=1, seq_len=ROW, max_candidates=40)
    assert len(full) == 10 and full.stats["tokens_fed"] == 10 * ROW
    assert capped.stats["certificate"] is True
    assert capped.stats["evicted_candidates"] == 600 - 40
    assert len(capped.pool) == 40
    assert list(capped.indices) == list(full.indices)
    assert capped.texts == full.texts
    assert list(capped.gains) == list(full.gains)


def test_capped_pool_keeps_only_the_bytes_of_kept_texts(tmp_path):
    """Parquet is read into string views of whole pages; the texts a capped pool keeps
    are copied out of them, so the rest of each batch is freed."""
    path = _corpus(tmp_path)
    capped = zipcal.load_pool(path, min_tokens=1, max_candidates=40)
    kept = [p for p in capped._parts if p.array is not None]
    held = sum(p.array.nbytes for p in kept)
    texts = sum(len(t.encode()) for p in kept for t in p.array.to_pylist())
    assert all(p.array.type == pa.string() for p in kept)
    assert held <= texts + 8 * 41 + 64 * len(kept)  # texts, offsets, buffer padding
    full = zipcal.load_pool(path, min_tokens=1)
    assert sum(p.array.nbytes for p in full._parts) > 3 * held


def test_certificate_failure_rereads_with_a_larger_cap(tmp_path, caplog):
    path = _corpus(tmp_path)
    full = zipcal.select(path, n=30, min_tokens=1, seq_len=ROW)
    # 12 large documents fill 12 rows; small ones share the other 18
    assert 30 < len(full) < 600 and full.stats["tokens_fed"] == 30 * ROW
    with caplog.at_level("WARNING"):
        capped = zipcal.select(path, n=30, min_tokens=1, seq_len=ROW, max_candidates=30)
    assert "certificate did not hold" in caplog.text
    assert capped.stats["certificate"] is True
    assert capped.stats["max_candidates"] > 30
    assert list(capped.indices) == list(full.indices)


def test_stream_sources_report_an_uncertified_result_instead_of_rereading(tmp_path):
    table = pq.read_table(_corpus(tmp_path))
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=50))
    sel = zipcal.select(reader, n=30, min_tokens=1, seq_len=ROW, max_candidates=30)
    assert sel.stats["certificate"] is False
    assert len(sel) == 30 and sel.stats["evicted_candidates"] > 0  # all it kept: not enough for 30 rows


def test_max_memory_derives_a_cap(tmp_path):
    path = _corpus(tmp_path)
    sel = zipcal.select(path, n=5, min_tokens=1, seq_len=ROW, max_memory="64K")
    assert sel.pool.max_candidates is not None and sel.pool.max_candidates < 600
    with pytest.raises(zipcal.InvalidArgumentError):
        zipcal.select(path, n=5, max_memory="lots")
    lean = zipcal.select(path, n=5, min_tokens=1, seq_len=ROW, max_memory="64K", keep_texts=False)
    assert lean.pool.max_candidates is not None and lean.pool.texts_kept is False
    assert list(lean.indices) == list(zipcal.select(path, n=5, min_tokens=1, seq_len=ROW).indices)


@pytest.mark.parametrize("unit", ["doc", "window"])
def test_pools_without_texts_reread_the_selected_rows(tmp_path, unit):
    path = _corpus(tmp_path)
    kept = zipcal.select(path, n=12, min_tokens=1, unit=unit, seq_len=16, keep_texts=True)
    lean = zipcal.select(path, n=12, min_tokens=1, unit=unit, seq_len=16, keep_texts=False)
    assert lean.pool.texts_kept is False
    assert list(lean.indices) == list(kept.indices)
    assert lean.texts == kept.texts
    assert lean.stats["zipf_exponent"] == kept.stats["zipf_exponent"]
    with pytest.raises(zipcal.InvalidArgumentError):
        zipcal.select(["a b c d"], n=1, keep_texts=False)

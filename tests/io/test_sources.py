"""Every input kind, through the real libraries, gives the same selection as the same
texts passed as a Python list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.feather as feather
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

import zipcal
from zipcal.default_corpus import default_corpus

N = 12
KW = dict(tokenizer="words", min_tokens=4, seq_len=32)  # 12 rows of 32 words: a tenth of the pool


@pytest.fixture(scope="module")
def texts() -> List[str]:
    """~150 one-line documents of real prose and code (no newlines, so a text file can hold
    one per line), plus a few short and non-ASCII ones."""
    docs = [" ".join(p.split()) for p in default_corpus()[:300:2]]
    docs += ["tiny", "Füße über Straße nach München gehen heute", "東京 大阪 京都 名古屋 福岡 札幌"]
    return [d for d in docs if d]


@pytest.fixture(scope="module")
def ref(texts):
    return zipcal.select(texts, N, **KW)


def same(sel, ref, *, order: Optional[List[int]] = None):
    assert sel.indices.tolist() == ref.indices.tolist()
    assert sel.texts == ref.texts
    assert sel.gains.tolist() == ref.gains.tolist()
    assert sel.stats["types_covered"] == ref.stats["types_covered"]
    assert sel.stats["types_available"] == ref.stats["types_available"]


def table_of(texts, **extra) -> pa.Table:
    return pa.table({"id": np.arange(len(texts)), "text": pa.array(texts, type=pa.string()), **extra})


# ------------------------------------------------------------------ files


def test_parquet(tmp_path, texts, ref):
    p = tmp_path / "c.parquet"
    pq.write_table(table_of(texts), p, row_group_size=37)
    sel = zipcal.select(str(p), N, **KW)
    same(sel, ref)
    assert set(sel.sources) == {str(p)}
    assert sel.source_rows.tolist() == ref.indices.tolist()
    same(zipcal.select(p, N, **KW), ref)  # pathlib.Path


def test_parquet_row_groups(tmp_path, texts):
    """Some row groups of a file, numbered from the row where the first one starts
    (the distributed path reads files this way)."""
    import zipcal.sources as src

    p = tmp_path / "c.parquet"
    pq.write_table(table_of(texts), p, row_group_size=37)
    opts = src.ReadOptions(text_column="text", batch_rows=50)
    rows = [
        (b.first_row + i, t)
        for b in src.parquet_batches(str(p), opts, [1, 2], 37)
        for i, t in enumerate(b.array.to_pylist())
    ]
    assert rows == list(enumerate(texts))[37:111]


def _parquet_rows(path, monkeypatch, reader: str, **kw):
    """(first row, texts as bytes, Arrow type) of each batch `_parquet` gives with
    `reader` (bytes: the texts may hold invalid UTF-8)."""
    import zipcal.sources as src

    monkeypatch.setenv("ZIPCAL_PARQUET_READER", reader)
    opts = src.ReadOptions(
        text_column="text", batch_rows=kw.pop("batch_rows", 50), first_batch_rows=kw.pop("first_batch_rows", 0)
    )
    return [
        (b.first_row, b.array.cast(pa.binary()).to_pylist(), b.array.type)
        for b in src.parquet_batches(str(path), opts, **kw)
    ]


def _flat(batches):
    return [(b[0] + i, t) for b in batches for i, t in enumerate(b[1])]


@pytest.mark.parametrize("column_type", [pa.string(), pa.large_string()])
def test_parquet_core_reader_gives_the_rows_pyarrow_gives(tmp_path, texts, monkeypatch, column_type):
    """The Rust reader (string views into the pages) and pyarrow give the same rows,
    numbered the same, for whole files and for row groups."""
    rows = [None if i % 11 == 5 else t for i, t in enumerate(texts)]
    p = tmp_path / "c.parquet"
    pq.write_table(
        pa.table({"id": np.arange(len(rows)), "text": pa.array(rows, type=column_type)}), p, row_group_size=37
    )
    for kw in (
        {},
        {"row_groups": [2, 0], "first_row": 0},
        {"row_groups": [2, 0], "first_row": 0, "first_batch_rows": 40},
        {"first_batch_rows": 3},
        {"batch_rows": 7},  # last: the whole file, checked below
    ):
        core = _parquet_rows(p, monkeypatch, "", **dict(kw))
        arrow = _parquet_rows(p, monkeypatch, "pyarrow", **dict(kw))
        assert {t for _, _, t in core} == {pa.string_view()}
        assert {t for _, _, t in arrow} == {column_type}
        assert _flat(core) == _flat(arrow)
    assert [t for _, t in _flat(core)] == [None if t is None else t.encode() for t in rows]


def test_parquet_core_batches_are_ingested_as_checked_text(tmp_path, texts, monkeypatch):
    """Batches of the core's Parquet reader come with a `_core.TextBatch` (text the
    Parquet decoder checked as UTF-8), which Python cannot make. Ingested as it is, it
    gives the corpus the same batch, read as a plain Arrow array, gives."""
    import zipcal.sources as src
    from zipcal import _core

    monkeypatch.delenv("ZIPCAL_PARQUET_READER", raising=False)
    rows = [None if i % 13 == 4 else t for i, t in enumerate(texts)]
    p = tmp_path / "c.parquet"
    pq.write_table(pa.table({"text": pa.array(rows, type=pa.string())}), p, row_group_size=40)
    batches = list(src.parquet_batches(str(p), src.ReadOptions(text_column="text", batch_rows=50)))
    assert batches and all(isinstance(b.checked, _core.TextBatch) for b in batches)
    with pytest.raises(TypeError):
        _core.TextBatch()
    seg = _core.Segmenter.words()
    checked, plain = _core.Corpus(seg, min_tokens=4), _core.Corpus(seg, min_tokens=4)
    for b in batches:
        assert len(b.checked) == len(b.array)
        assert pa.array(b.checked).to_pylist() == b.array.to_pylist()
        assert checked.add_arrow(b.checked, b.first_row) == plain.add_arrow(pa.array(b.array.to_pylist()), b.first_row)
    assert len(checked) == len(plain) > 0
    for i in range(len(plain)):
        assert checked.candidate_types(i).tolist() == plain.candidate_types(i).tolist()
    assert checked.counts().tolist() == plain.counts().tolist()


def _with_invalid_utf8(texts, bad_rows):
    """A string array holding `texts`, with the bytes of `bad_rows` made invalid UTF-8."""
    data, offsets = bytearray(), [0]
    for i, t in enumerate(texts):
        b = t.encode()
        data += b[:3] + b"\xff\xfe" + b[3:] if i in bad_rows else b
        offsets.append(len(data))
    return pa.Array.from_buffers(
        pa.string(), len(texts), [None, pa.py_buffer(np.array(offsets, dtype=np.int32)), pa.py_buffer(bytes(data))]
    )


def test_parquet_core_reader_hands_over_to_pyarrow_where_it_stops(tmp_path, texts, monkeypatch):
    """Invalid UTF-8 in the third row group: the Rust reader stops there and pyarrow
    reads on from the first row not yet given out (no row twice, none missed), so
    the errors and `encoding_errors="replace"` counts are pyarrow's path's."""
    bad = {80, 81, 130}
    p = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"text": _with_invalid_utf8(texts, bad)}), p, row_group_size=37)
    core = _parquet_rows(p, monkeypatch, "", batch_rows=10)
    arrow = _parquet_rows(p, monkeypatch, "pyarrow", batch_rows=10)
    assert _flat(core) == _flat(arrow)
    assert [r for r, _ in _flat(core)] == list(range(len(texts)))
    # The same with a smaller first batch (the second reader is the one that stops).
    assert _flat(_parquet_rows(p, monkeypatch, "", batch_rows=10, first_batch_rows=3)) == _flat(arrow)
    assert pa.string_view() in {t for _, _, t in core}  # the first row groups
    assert pa.string() in {t for _, _, t in core}  # the rest, by pyarrow
    monkeypatch.delenv("ZIPCAL_PARQUET_READER")
    with pytest.raises(zipcal.InputError) as ei:
        zipcal.load_pool(str(p), **KW)
    assert "bad.parquet" in str(ei.value) and "row 80" in str(ei.value)
    pool = zipcal.load_pool(str(p), encoding_errors="replace", **KW)
    monkeypatch.setenv("ZIPCAL_PARQUET_READER", "pyarrow")
    assert pool.invalid_utf8_rows == zipcal.load_pool(str(p), encoding_errors="replace", **KW).invalid_utf8_rows == 3


def test_first_parquet_file_starts_with_a_smaller_batch(tmp_path, texts, monkeypatch):
    """Only the first file of an input starts with `first_batch_rows` rows; every
    row comes once, in order, and the selection is the one of full batches."""
    import zipcal.sources as src

    monkeypatch.delenv("ZIPCAL_PARQUET_READER", raising=False)
    paths = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    pq.write_table(table_of(texts[:150]), paths[0], row_group_size=37)
    pq.write_table(table_of(texts[150:]), paths[1], row_group_size=37)
    opts = src.ReadOptions(text_column="text", batch_rows=50, first_batch_rows=8)
    batches = list(src.iter_batches([str(p) for p in paths], opts))
    lengths = [(Path(b.source).name, b.first_row, len(b.array)) for b in batches]
    n2 = len(texts) - 150
    want = [("a.parquet", 0, 8), ("a.parquet", 8, 50), ("a.parquet", 58, 50), ("a.parquet", 108, 42)]
    want += [("b.parquet", k, min(50, n2 - k)) for k in range(0, n2, 50)]
    assert lengths == want
    assert [t for b in batches for t in b.array.to_pylist()] == texts
    assert src.FIRST_BATCH_ROWS < src.BATCH_ROWS
    monkeypatch.setattr("zipcal.pool.FIRST_BATCH_ROWS", 0)
    whole = zipcal.select([str(p) for p in paths], N, **KW)
    monkeypatch.setattr("zipcal.pool.FIRST_BATCH_ROWS", 5)
    same(zipcal.select([str(p) for p in paths], N, **KW), whole)


def test_parquet_codec_the_core_lacks_is_read_by_pyarrow(tmp_path, texts, ref, monkeypatch):
    p = tmp_path / "brotli.parquet"
    pq.write_table(table_of(texts), p, row_group_size=37, compression="brotli")
    batches = _parquet_rows(p, monkeypatch, "")
    assert {t for _, _, t in batches} == {pa.string()}
    assert [t for _, t in _flat(batches)] == [t.encode() for t in texts]
    monkeypatch.delenv("ZIPCAL_PARQUET_READER")
    same(zipcal.select(str(p), N, **KW), ref)


def test_arrow_ipc_file_and_stream(tmp_path, texts, ref):
    t = table_of(texts)
    f = tmp_path / "c.arrow"
    with ipc.new_file(f, t.schema) as w:
        for b in t.to_batches(max_chunksize=40):
            w.write_batch(b)
    same(zipcal.select(str(f), N, **KW), ref)
    s = tmp_path / "c.arrows"
    with ipc.new_stream(s, t.schema) as w:
        for b in t.to_batches(max_chunksize=40):
            w.write_batch(b)
    same(zipcal.select(str(s), N, **KW), ref)


def test_feather_v2(tmp_path, texts, ref):
    f = tmp_path / "c.feather"
    feather.write_feather(table_of(texts), f, chunksize=50)
    same(zipcal.select(str(f), N, **KW), ref)


def test_jsonl(tmp_path, texts, ref):
    p = tmp_path / "c.jsonl"
    with open(p, "w", encoding="utf-8") as fh:
        for i, t in enumerate(texts):
            fh.write(json.dumps({"id": i, "text": t, "meta": {"k": [1, 2]}}, ensure_ascii=(i % 2 == 0)) + "\n")
    same(zipcal.select(str(p), N, **KW), ref)


def test_jsonl_with_nulls_and_blank_lines(tmp_path, texts):
    rows = list(texts)
    rows[3] = None
    p = tmp_path / "c.jsonl"
    with open(p, "w", encoding="utf-8") as fh:
        for t in rows:
            fh.write(json.dumps({"text": t}) + "\n")
    sel = zipcal.select(str(p), N, **KW)
    ref = zipcal.select(rows, N, **KW)
    same(sel, ref)
    assert sel.pool.report["null_rows"] == 1


def test_text_one_document_per_line(tmp_path, texts, ref):
    p = tmp_path / "c.txt"
    p.write_text("\n".join(texts) + "\n", encoding="utf-8")
    same(zipcal.select(str(p), N, text_split="line", **KW), ref)
    # CRLF line ends give the same documents
    q = tmp_path / "crlf.txt"
    q.write_bytes(("\r\n".join(texts) + "\r\n").encode("utf-8"))
    same(zipcal.select(str(q), N, text_split="line", **KW), ref)


def test_text_auto_split_with_blank_lines_between_lines(tmp_path, texts, ref):
    # WikiText style: a blank line after every line; each line is a document (blank
    # lines are empty rows, so rows count every physical line)
    p = tmp_path / "c.txt"
    p.write_text("\n\n".join(texts) + "\n", encoding="utf-8")
    rows = "\n\n".join(texts).split("\n")
    same(zipcal.select(str(p), N, **KW), zipcal.select(rows, N, **KW))


def test_text_auto_split_one_document_per_line(tmp_path, texts, ref):
    p = tmp_path / "c.txt"
    p.write_text("\n".join(texts) + "\n", encoding="utf-8")
    sel = zipcal.select(str(p), N, **KW)
    same(sel, ref)


def test_text_blank_line_paragraphs(tmp_path, texts):
    # paragraphs of 1-3 lines each, separated by blank lines
    paras = []
    i = 0
    while i < len(texts):
        k = 1 + len(paras) % 3
        paras.append("\n".join(texts[i : i + k]))
        i += k
    p = tmp_path / "paras.txt"
    p.write_text("\n\n".join(paras) + "\n", encoding="utf-8")
    want = zipcal.select(paras, N, **KW)
    same(zipcal.select(str(p), N, text_split="blank", **KW), want)
    same(zipcal.select(str(p), N, text_split="auto", **KW), want)
    # several blank lines between paragraphs still separate them, once
    q = tmp_path / "paras2.txt"
    q.write_text("\n\n\n\n".join(paras), encoding="utf-8")
    same(zipcal.select(str(q), N, text_split="blank", **KW), want)


def _split_files(tmp_path: Path, texts: List[str]):
    """The corpus split over a Parquet, a JSONL and a text file, in sorted-name order."""
    a, b = 50, 100
    d = tmp_path / "folder"
    d.mkdir()
    p1 = d / "a.parquet"
    pq.write_table(table_of(texts[:a]), p1)
    p2 = d / "b.jsonl"
    p2.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts[a:b]), encoding="utf-8")
    p3 = d / "c.txt"
    p3.write_text("\n".join(texts[b:]) + "\n", encoding="utf-8")
    (d / "ignored.bin").write_bytes(b"\x00\x01")
    return d, [(str(p1), 0, a), (str(p2), a, b), (str(p3), b, len(texts))]


def _check_origins(sel, files):
    for row, src, srow in zip(sel.indices.tolist(), sel.sources, sel.source_rows.tolist()):
        (path, lo, hi) = next(f for f in files if f[1] <= row < f[2])
        assert src == path
        assert srow == row - lo


def test_folder_glob_and_list_of_paths(tmp_path, texts, ref):
    d, files = _split_files(tmp_path, texts)
    for source in (str(d), d, str(d / "*.*[qlt]"), [f[0] for f in files], [Path(f[0]) for f in files]):
        sel = zipcal.select(source, N, text_split="line", **KW)
        same(sel, ref)
        _check_origins(sel, files)
        assert sel.pool.report["rows"] == len(texts)


def test_list_of_paths_in_any_order_numbers_rows_in_that_order(tmp_path, texts):
    d, files = _split_files(tmp_path, texts)
    order = [files[2], files[0], files[1]]
    reordered = texts[files[2][1] : files[2][2]] + texts[: files[0][2]] + texts[files[1][1] : files[1][2]]
    sel = zipcal.select([f[0] for f in order], N, text_split="line", **KW)
    same(sel, zipcal.select(reordered, N, **KW))
    base = 0
    shifted = []
    for path, lo, hi in order:
        shifted.append((path, base, base + hi - lo))
        base += hi - lo
    _check_origins(sel, shifted)


# ------------------------------------------------------------------ in-memory Arrow


def test_pyarrow_table_with_many_chunks(texts, ref):
    t = table_of(texts)
    batches = t.to_batches(max_chunksize=17)
    multi = pa.Table.from_batches(batches)
    assert multi.column("text").num_chunks > 1
    same(zipcal.select(multi, N, **KW), ref)


def test_record_batch_and_reader(texts, ref):
    t = table_of(texts)
    same(zipcal.select(t.combine_chunks().to_batches()[0], N, **KW), ref)
    reader = pa.RecordBatchReader.from_batches(t.schema, t.to_batches(max_chunksize=23))
    same(zipcal.select(reader, N, **KW), ref)


def test_pyarrow_dataset(tmp_path, texts, ref):
    d = tmp_path / "ds"
    pads.write_dataset(table_of(texts), d, format="parquet", max_rows_per_file=1000, max_rows_per_group=30)
    same(zipcal.select(pads.dataset(str(d), format="parquet"), N, **KW), ref)
    same(zipcal.select(pads.dataset(table_of(texts)), N, **KW), ref)


def test_large_string_and_dictionary_columns(texts, ref):
    same(zipcal.select(pa.table({"text": pa.array(texts, type=pa.large_string())}), N, **KW), ref)
    dict_col = pa.array(texts).dictionary_encode()
    assert pa.types.is_dictionary(dict_col.type)
    same(zipcal.select(pa.table({"text": dict_col}), N, **KW), ref)
    same(zipcal.select(pa.array(texts, type=pa.large_string()), N, **KW), ref)
    same(zipcal.select(pa.chunked_array([texts[:60], texts[60:]]), N, **KW), ref)


def test_string_view_column(texts, ref):
    col = pa.array(texts, type=pa.string_view())
    same(zipcal.select(pa.table({"text": col}), N, **KW), ref)


def test_other_text_column_name(texts, ref):
    t = pa.table({"n": np.arange(len(texts)), "body": texts})
    same(zipcal.select(t, N, **KW), ref)  # the only string column is used
    t2 = pa.table({"title": ["x"] * len(texts), "body": texts})
    same(zipcal.select(t2, N, text_column="body", **KW), ref)


class StreamOnly:
    """Exposes nothing but the Arrow PyCapsule stream interface."""

    def __init__(self, table: pa.Table) -> None:
        self._table = table

    def __arrow_c_stream__(self, requested_schema=None):
        return self._table.__arrow_c_stream__(requested_schema)


def test_arrow_c_stream_object(texts, ref):
    obj = StreamOnly(pa.Table.from_batches(table_of(texts).to_batches(max_chunksize=31)))
    assert not hasattr(obj, "__iter__")
    sel = zipcal.select(obj, N, **KW)
    same(sel, ref)
    assert "StreamOnly" in sel.sources[0]


# ------------------------------------------------------------------ dataframes and datasets


def test_polars_dataframe(texts, ref):
    pl = pytest.importorskip("polars")
    df = pl.DataFrame({"id": list(range(len(texts))), "text": texts})
    schema = pa.RecordBatchReader.from_stream(df).schema
    assert pa.types.is_string_view(schema.field("text").type) or pa.types.is_large_string(schema.field("text").type)
    same(zipcal.select(df, N, **KW), ref)
    # a multi-chunk frame
    df2 = pl.concat([df[:40], df[40:]], rechunk=False)
    same(zipcal.select(df2, N, **KW), ref)


def test_pandas_dataframe(texts, ref):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"id": range(len(texts)), "text": texts})
    same(zipcal.select(df, N, **KW), ref)
    # a non-default index is ignored: rows are positions
    df.index = np.arange(len(texts))[::-1] * 7
    same(zipcal.select(df, N, **KW), ref)
    obj = pd.DataFrame({"text": pd.Series(texts, dtype=object)})
    same(zipcal.select(obj, N, **KW), ref)


@pytest.fixture(scope="module")
def hf_dataset(texts):
    datasets = pytest.importorskip("datasets")
    datasets.disable_progress_bars()
    return datasets.Dataset.from_dict({"id": list(range(len(texts))), "text": texts})


def test_hf_dataset(hf_dataset, ref):
    same(zipcal.select(hf_dataset, N, **KW), ref)


def test_hf_dataset_with_indices_mapping(hf_dataset, texts):
    picked = list(range(len(texts) - 1, -1, -2))
    sub = hf_dataset.select(picked)
    same(zipcal.select(sub, N, **KW), zipcal.select([texts[i] for i in picked], N, **KW))
    shuffled = hf_dataset.shuffle(seed=3)
    order = shuffled["id"]
    assert order != list(range(len(texts)))
    same(zipcal.select(shuffled, N, **KW), zipcal.select([texts[i] for i in order], N, **KW))


def test_hf_iterable_dataset(hf_dataset, ref):
    same(zipcal.select(hf_dataset.to_iterable_dataset(num_shards=3), N, **KW), ref)


# ------------------------------------------------------------------ Python iterables


def test_iterable_of_dicts_and_generator(texts, ref):
    same(zipcal.select([{"text": t, "other": 1} for t in texts], N, **KW), ref)
    same(zipcal.select(({"body": t} for t in texts), N, text_column="body", **KW), ref)
    same(zipcal.select((t for t in texts), N, **KW), ref)
    same(zipcal.select(tuple(texts), N, **KW), ref)
    same(zipcal.select(iter(texts), N, **KW), ref)


def test_nulls_in_every_tabular_kind(tmp_path, texts):
    rows: List[Optional[str]] = list(texts)
    for k in (0, 5, 77):
        rows[k] = None
    want = zipcal.select(rows, N, **KW)
    assert want.pool.report["null_rows"] == 3
    t = pa.table({"text": pa.array(rows, type=pa.string())})
    p = tmp_path / "n.parquet"
    pq.write_table(t, p)
    for source in (t, str(p), t.to_batches()[0], rows):
        sel = zipcal.select(source, N, **KW)
        same(sel, want)
        assert sel.pool.report["null_rows"] == 3
        assert sel.pool.report["rows"] == len(rows)


def test_pool_can_be_reused(texts, ref):
    pool = zipcal.load_pool(texts, **KW)
    same(zipcal.select(pool, N), ref)
    r = zipcal.select(pool, N, strategy="random", seed=1)
    assert r.stats["n"] == N and len(r) >= N
    fresh = zipcal.select(texts, N, strategy="random", seed=1, **KW)
    assert r.candidates.tolist() == fresh.candidates.tolist() and r.texts == fresh.texts
    assert ref.texts[0] == pool.candidate_text(int(ref.candidates[0]))
    assert ref.texts[0] in pool.row_text(int(ref.indices[0]))


def test_read_ahead_starts_at_once_and_stops_when_closed():
    """Batches are read before the first one is asked for (the first batches are
    decoded while the tokenizer loads); closing stops the reader; errors reach the
    consumer in order."""
    import threading

    from zipcal.sources import read_ahead

    started = threading.Event()
    produced = []

    def gen():
        started.set()
        for i in range(100):
            produced.append(i)
            yield i

    r = read_ahead(gen(), depth=2)
    assert started.wait(5), "the reader did not start before iteration"
    it = iter(r)
    assert [next(it), next(it), next(it)] == [0, 1, 2]
    r.close()
    r._thread.join(5)
    assert not r._thread.is_alive()
    assert len(produced) < 100

    def failing():
        yield 1
        raise ValueError("bad row 2")

    with read_ahead(failing()) as r2:
        got = []
        with pytest.raises(ValueError, match="bad row 2"):
            for x in r2:
                got.append(x)
    assert got == [1]

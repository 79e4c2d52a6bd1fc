"""Turn any supported corpus into a stream of Arrow string arrays.

Supported: paths (Parquet, Arrow IPC / Feather, JSONL, CSV/TSV, plain text; text,
JSONL and CSV also compressed), globs, folders and lists of those, local or remote
(``s3://``, ``gs://``, ``hf://``, ``http(s)://``: see :mod:`zipcal.remote`);
``pyarrow`` Table / RecordBatch / RecordBatchReader / Dataset;
``polars`` and ``pandas`` DataFrames; Hugging Face ``datasets.Dataset`` (and
``IterableDataset``); any object exporting the Arrow PyCapsule stream interface;
and, as the slow fallback, an iterable of strings (or of dicts with the text column).
"""

from __future__ import annotations

import dataclasses
import glob
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, List, Optional, Sequence

import pyarrow as pa

from . import remote
from .chat import MESSAGES_TYPE, conversation, is_messages_type, missing_template_error
from .compression import COMPRESSION_EXT, open_stream, split_compression
from .errors import InputError, InvalidArgumentError, SourceNotFoundError

log = logging.getLogger(__name__)

PARQUET_EXT = {".parquet", ".pq"}
ARROW_EXT = {".arrow", ".feather", ".ipc", ".arrows"}
JSONL_EXT = {".jsonl", ".ndjson", ".json"}
TEXT_EXT = {".txt", ".text", ".md", ".rst", ".tokens", ".raw"}
CSV_EXT = {".csv", ".tsv"}
SUPPORTED_EXT = PARQUET_EXT | ARROW_EXT | JSONL_EXT | TEXT_EXT | CSV_EXT
# Text, JSON lines and CSV may be compressed (``docs.jsonl.zst``, ``c4-00000.json.gz``).
STREAM_EXT = JSONL_EXT | TEXT_EXT | CSV_EXT


def supported_file(path: "str | os.PathLike[str]") -> bool:
    """Whether a folder listing takes this file: a supported extension, or a
    compression extension after a text or JSON-lines one."""
    ext, codec = split_compression(path)
    return ext in (STREAM_EXT if codec else SUPPORTED_EXT)


BATCH_ROWS = 8192
# Rows of the first batch of a corpus read from Parquet files. A small first batch is
# decoded from the file's first page alone, so ingestion starts a few milliseconds
# after the call instead of after a whole batch; it also learns the most frequent
# words before the first full batch comes.
FIRST_BATCH_ROWS = 1024
TEXT_BLOCK_BYTES = 32 << 20


@dataclass
class Batch:
    """One Arrow string array from one source; ``first_row`` is its offset in that source."""

    source: str
    first_row: int
    array: pa.Array
    # The same batch as the core's Parquet reader gave it (``_core.TextBatch``, text
    # already checked as UTF-8), which ingestion takes without checking it again.
    checked: Any = None


@dataclass
class ReadOptions:
    text_column: Optional[str] = "text"
    text_split: str = "auto"  # "auto" | "line" | "blank"
    encoding_errors: str = "strict"  # "strict" | "replace"
    batch_rows: int = BATCH_ROWS
    # Rows of the first batch of the first Parquet file (0: batch_rows).
    first_batch_rows: int = 0
    # Renders a messages column (:class:`zipcal.chat.ChatTemplate`; None: no template).
    chat: Any = None

    def __post_init__(self) -> None:
        if self.text_split not in ("auto", "line", "blank"):
            raise InvalidArgumentError(f"text_split must be 'auto', 'line' or 'blank', got {self.text_split!r}")
        if self.encoding_errors not in ("strict", "replace"):
            raise InvalidArgumentError(f"encoding_errors must be 'strict' or 'replace', got {self.encoding_errors!r}")


class ReadCounters:
    """Counts of things fixed up while reading (reported in stats)."""

    def __init__(self) -> None:
        self.invalid_utf8_rows = 0
        self.files = 0


# ---------------------------------------------------------------- path handling


def _has_glob(s: str) -> bool:
    return any(c in s for c in "*?[")


def expand_paths(spec: Any) -> List[str]:
    """Expand a path, glob, folder, or list of those into sorted existing files."""
    items = list(spec) if isinstance(spec, (list, tuple)) else [spec]
    out: List[str] = []
    for item in items:
        s = remote.local_path(os.fspath(item))
        if remote.is_url(s):
            out.extend(remote.expand(s, supported_file))
        elif _has_glob(s):
            matches = sorted(p for p in glob.glob(s, recursive=True) if os.path.isfile(p))
            if not matches:
                raise SourceNotFoundError(f"{s}: the pattern matches no file")
            out.extend(matches)
        elif os.path.isdir(s) and (saved := _saved_dataset_files(s)) is not None:
            out.extend(saved)
        elif os.path.isdir(s):
            matches = sorted(str(p) for p in Path(s).iterdir() if p.is_file() and supported_file(p))
            if not matches:
                raise SourceNotFoundError(
                    f"{s}: the folder holds no supported file ({', '.join(sorted(SUPPORTED_EXT))}, text and "
                    f"JSON lines also compressed: {', '.join(sorted(COMPRESSION_EXT))})"
                )
            out.extend(matches)
        elif os.path.isfile(s):
            out.append(s)
        else:
            raise SourceNotFoundError(f"{s}: no such file")
    return out


def _saved_dataset_files(folder: str) -> Optional[List[str]]:
    """The Arrow files of a folder written by ``datasets.Dataset.save_to_disk``, in
    the dataset's order (None for any other folder). A ``DatasetDict`` folder is an
    error naming its splits."""
    d = Path(folder)
    if (d / "dataset_dict.json").is_file():
        try:
            splits = json.loads((d / "dataset_dict.json").read_text(encoding="utf-8")).get("splits", [])
        except (OSError, ValueError):
            splits = []
        raise SourceNotFoundError(
            f"{folder}: a DatasetDict saved with save_to_disk; name one split's folder"
            + (f" ({', '.join(str(d / sp) for sp in splits)})" if splits else "")
        )
    state = d / "state.json"
    if not (state.is_file() and (d / "dataset_info.json").is_file()):
        return None
    try:
        files = [f["filename"] for f in json.loads(state.read_text(encoding="utf-8"))["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"{state}: not a readable datasets save_to_disk state ({e})") from None
    missing = [f for f in files if not (d / f).is_file()]
    if missing:
        raise SourceNotFoundError(f"{folder}: files listed in state.json are missing: {', '.join(missing)}")
    return [str(d / f) for f in files]


def _url_names_files(url: str) -> bool:
    """Whether a URL in a list names input files rather than being a document that
    happens to be a URL: a supported file name, a glob, or a prefix ending in '/'."""
    from urllib.parse import urlsplit

    path = urlsplit(url).path
    return not any(c.isspace() for c in url) and (path.endswith("/") or _has_glob(path) or supported_file(path))


def _looks_like_paths(items: Sequence[Any]) -> bool:
    if not items:
        return False
    for it in items:
        if isinstance(it, os.PathLike) or (remote.is_url(it) and _url_names_files(it)):
            continue
        if not isinstance(it, str) or "\n" in it or len(it) > 4096:
            return False
        if not (os.path.exists(it) or (_has_glob(it) and glob.glob(it))):
            return False
    return True


def is_file_source(source: Any) -> bool:
    """Whether ``source`` names files (a path, glob, folder, or a list of those)."""
    return isinstance(source, (str, os.PathLike)) or (isinstance(source, (list, tuple)) and _looks_like_paths(source))


def total_bytes(source: Any) -> Optional[int]:
    """Size of the input in bytes where cheaply known (for progress bars)."""
    try:
        if is_file_source(source):
            sizes = [remote.size(p) if remote.is_url(p) else os.path.getsize(p) for p in expand_paths(source)]
            return None if None in sizes else sum(s for s in sizes if s is not None)
    except (OSError, InputError):
        return None
    return None


def random_access(path: str) -> Any:
    """What pyarrow opens a Parquet or Arrow file from: the local path, or the remote
    file with ranged reads."""
    return remote.open_input_file(path) if remote.is_url(path) else path


# ---------------------------------------------------------------- column handling


def _is_string_type(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def pick_column(schema: pa.Schema, text_column: Optional[str], where: str) -> str:
    """Name of the text column in ``schema``; a clear error when it is missing or not text.
    A column of chat messages (:func:`zipcal.chat.is_messages_type`) is taken when named,
    or when there is no ``text`` column and it is called ``messages``: its batches are
    rendered by :func:`rendered`."""
    names = schema.names
    if text_column is not None and text_column in names:
        t = schema.field(text_column).type
        if is_messages_type(t):
            return text_column
        if not (_is_string_type(t) or (pa.types.is_dictionary(t) and _is_string_type(t.value_type))):
            raise InputError(f"{where}: column {text_column!r} has type {t}, expected strings")
        return text_column
    if text_column in (None, "text") and "text" not in names and "messages" in names:
        t = schema.field("messages").type
        if not is_messages_type(t):
            raise InputError(
                f"{where}: column 'messages' has type {t}: chat messages need string 'role' and 'content' "
                "fields (content parts are not supported)"
            )
        log.info("%s: rendering the chat column 'messages'", where)
        return "messages"
    text_cols = [f.name for f in schema if _is_string_type(f.type)]
    if len(text_cols) == 1 and text_column in (None, "text"):
        log.info("%s: using the only string column %r", where, text_cols[0])
        return text_cols[0]
    wanted = f"no column {text_column!r}" if text_column else "no text column chosen"
    raise InputError(f"{where}: {wanted}; columns are {names} (choose one with text_column= / --text-column)")


def _as_string_array(arr: Any) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    return arr


def take(arr: pa.Array, indices: Any) -> pa.Array:
    """``arr.take(indices)`` for any string array. pyarrow has no take kernel for
    string views, so those are taken as plain strings (which also copies the kept
    texts out of the buffers the views point into, so that the rest can be freed)."""
    if pa.types.is_string_view(arr.type):
        arr = arr.cast(pa.string())
    return arr.take(pa.array(indices, type=pa.int64()))


def _table_batches(table: pa.Table, col: str, where: str, rows: int) -> Iterator[Batch]:
    first = 0
    for chunk in table.column(col).chunks:
        for start in range(0, len(chunk), rows):
            piece = chunk.slice(start, rows)
            yield Batch(where, first, _as_string_array(piece))
            first += len(piece)


def _reader_batches(reader: Any, col: Optional[str], where: str) -> Iterator[Batch]:
    first = 0
    name = pick_column(reader.schema, col, where)
    for rb in reader:
        arr = _as_string_array(rb.column(rb.schema.get_field_index(name)))
        yield Batch(where, first, arr)
        first += len(arr)


# ---------------------------------------------------------------- file readers


def parquet_batches(
    path: str, opts: ReadOptions, row_groups: Optional[Sequence[int]] = None, first_row: int = 0
) -> Iterator[Batch]:
    """Batches of a Parquet file, or of some of its row groups (``first_row`` is then
    the row of the file where the first of them starts).

    A string column is read by the Rust core into Arrow string views that point into
    the decompressed pages (``_core.ParquetText``): no copy of the text, no buffer
    that grows batch by batch, and no pyarrow.parquet import. Anything that reader
    does not take (another column type, a codec it lacks, invalid UTF-8, a damaged
    page) is read by pyarrow, from the first row not yet given out, so its errors and
    ``encoding_errors`` handling are pyarrow's path as before.
    ``ZIPCAL_PARQUET_READER=pyarrow`` reads every file with pyarrow."""
    given = 0
    batches = None
    core = _core_parquet(path)
    if core is not None:
        schema = pa.schema(core.schema())
        col = pick_column(schema, opts.text_column, path)
        if _is_string_type(schema.field(col).type):
            try:
                groups = None if row_groups is None else list(row_groups)
                batches = core.read(col, opts.batch_rows, groups, opts.first_batch_rows)
            except Exception as e:
                log.debug("%s: read by pyarrow (%s)", path, e)
        if batches is not None:
            while True:
                try:
                    view = next(batches, None)
                except Exception as e:  # any failure: pyarrow reads the rest
                    log.debug("%s: read by pyarrow from row %d (%s)", path, first_row + given, e)
                    break
                if view is None:
                    return
                arr = pa.array(view)
                yield Batch(path, first_row + given, arr, checked=view)
                given += len(arr)
    yield from _parquet_pyarrow(path, opts, row_groups, first_row, given)


def _core_parquet(path: str) -> Any:
    """The file opened by the core's reader, or None (turned off, or not a file it
    opens)."""
    if os.environ.get("ZIPCAL_PARQUET_READER", "").strip().lower() == "pyarrow" or remote.is_url(path):
        return None
    from . import _core

    try:
        return _core.ParquetText(path)
    except Exception as e:
        log.debug("%s: read by pyarrow (%s)", path, e)
        return None


def _parquet_pyarrow(
    path: str, opts: ReadOptions, row_groups: Optional[Sequence[int]], first_row: int, skip: int
) -> Iterator[Batch]:
    """Batches of the text column read by pyarrow, from the given row groups (all when
    None), leaving out their first ``skip`` rows.

    Read with ``pq.ParquetFile`` into pyarrow's default pool, without pre-buffering:
    `pyarrow.dataset` fragments cost 0.3-0.4 s before the first batch (importing it
    imports pandas when installed)."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(random_access(path), pre_buffer=False)
        try:
            col = pick_column(pf.schema_arrow, opts.text_column, path)
            groups = list(range(pf.num_row_groups)) if row_groups is None else list(row_groups)
            first = first_row
            # Row groups wholly skipped are not read.
            while groups and skip >= pf.metadata.row_group(groups[0]).num_rows:
                n = pf.metadata.row_group(groups.pop(0)).num_rows
                skip -= n
                first += n
            if not groups:
                return
            batches = pf.iter_batches(batch_size=opts.batch_rows, row_groups=groups, columns=[col], use_threads=False)
            for rb in batches:
                arr = _as_string_array(rb.column(0))
                if skip:
                    cut = min(skip, len(arr))
                    arr, skip, first = arr.slice(cut), skip - cut, first + cut
                    if not len(arr):
                        continue
                yield Batch(path, first, arr)
                first += len(arr)
        finally:
            pf.close()
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as e:
        if isinstance(e, InputError):
            raise
        raise InputError(f"{path}: not a readable Parquet file ({e})") from None


def _arrow_ipc(path: str, opts: ReadOptions) -> Iterator[Batch]:
    import pyarrow.ipc as ipc

    try:
        try:
            reader = ipc.open_file(random_access(path))
            batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
            schema = reader.schema
        except pa.ArrowInvalid:
            stream = ipc.open_stream(random_access(path))
            batches, schema = iter(stream), stream.schema
        col = pick_column(schema, opts.text_column, path)
        first = 0
        for rb in batches:
            arr = _as_string_array(rb.column(schema.get_field_index(col)))
            yield Batch(path, first, arr)
            first += len(arr)
    except (pa.ArrowInvalid, pa.ArrowIOError) as e:
        raise InputError(f"{path}: not a readable Arrow IPC / Feather file ({e})") from None


def _jsonl_python(path: str, opts: ReadOptions, counters: ReadCounters) -> Iterator[Batch]:
    """Line-by-line JSONL reader: slower, but names the exact line of any problem.
    Values are strings, or chat conversations (lists of role/content records), one
    kind per file."""
    col = opts.text_column or "text"
    values: List[Any] = []
    first = 0
    seen_key = False
    chat: Optional[bool] = None  # the column holds conversations (decided by the first value)

    def batch() -> Batch:
        return Batch(path, first, pa.array(values, type=MESSAGES_TYPE if chat else pa.string()))

    with open_stream(path) as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8", errors=opts.encoding_errors)
            except UnicodeDecodeError as e:
                raise InputError(f"{path}: line {lineno}: invalid UTF-8 at byte {e.start}") from None
            if "\ufffd" in line and b"\xef\xbf\xbd" not in raw:
                counters.invalid_utf8_rows += 1
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}: line {lineno}: invalid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(obj, dict):
                raise InputError(f"{path}: line {lineno}: expected a JSON object, got {type(obj).__name__}")
            if not seen_key and col == "text" and opts.text_column in (None, "text") and "text" not in obj:
                if isinstance(obj.get("messages"), list):
                    col = "messages"  # chat data without a text column, as pick_column decides
            value = obj.get(col)  # a record without the key is a null row (counted)
            seen_key = seen_key or col in obj
            if value is not None:
                if chat is None:
                    chat = isinstance(value, list)
                if chat:
                    value = conversation(value, f"{path}: line {lineno}", col)
                elif not isinstance(value, str):
                    raise InputError(
                        f"{path}: line {lineno}: column {col!r} is {type(value).__name__}, expected a string"
                    )
            values.append(value)
            if len(values) >= opts.batch_rows:
                yield batch()
                first += len(values)
                values = []
    if (values or first) and not seen_key:
        raise InputError(f"{path}: no record has the key {col!r} (choose the column with text_column= / --text-column)")
    if values:
        yield batch()


def explain_jsonl_error(path: str, opts: ReadOptions) -> None:
    """Re-read a JSONL file line by line to raise an error naming the faulty line."""
    if (remote.is_url(path) or os.path.isfile(path)) and split_compression(path)[0] in JSONL_EXT:
        strict = ReadOptions(opts.text_column, opts.text_split, "strict", opts.batch_rows)
        for _ in _jsonl_python(path, strict, ReadCounters()):
            pass


def _jsonl(path: str, opts: ReadOptions, counters: ReadCounters) -> Iterator[Batch]:
    # Fast path: Arrow's multi-threaded JSON reader when the whole file parses cleanly;
    # otherwise the line reader, which reports the faulty line.
    import pyarrow.json as pj

    if split_compression(path)[1] is not None or remote.is_url(path):
        yield from _jsonl_stream(path, opts, counters)
        return
    try:
        table = pj.read_json(path)
        col = pick_column(table.schema, opts.text_column, path)
    except (pa.ArrowInvalid, InputError, pa.ArrowNotImplementedError):
        yield from _jsonl_python(path, opts, counters)
        return
    yield from _table_batches(table, col, path, opts.batch_rows)


def _jsonl_stream(path: str, opts: ReadOptions, counters: ReadCounters) -> Iterator[Batch]:
    """A compressed JSON-lines file, decompressed and parsed a block at a time by
    Arrow's streaming JSON reader (memory bounded by the block size). A file Arrow
    cannot parse (or whose text column changes type) is read by the line reader,
    which names the faulty line, from the row where Arrow stopped."""
    import pyarrow.json as pj

    done = 0
    try:
        with open_stream(path) as f:
            reader = pj.open_json(f, read_options=pj.ReadOptions(block_size=8 << 20))
            col = pick_column(reader.schema, opts.text_column, path)
            for batch in reader:
                arr = batch.column(batch.schema.get_field_index(col))
                for start in range(0, len(arr), opts.batch_rows):
                    part = _as_string_array(arr.slice(start, opts.batch_rows))
                    yield Batch(path, done, part)
                    done += len(part)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, InputError) as e:
        if isinstance(e, InputError) and "looks like" in str(e):
            raise
        for b in _jsonl_python(path, opts, counters):
            if b.first_row + len(b.array) <= done:
                continue
            skip = max(done - b.first_row, 0)
            yield Batch(path, b.first_row + skip, b.array.slice(skip))


def _csv(path: str, opts: ReadOptions) -> Iterator[Batch]:
    """CSV (``.csv``) or tab-separated (``.tsv``) text with a header row, read as a
    stream by Arrow's CSV reader; quoted values may hold newlines. Only the text
    column is converted, as strings."""
    import pyarrow.csv as pc

    ext, _ = split_compression(path)
    parse = pc.ParseOptions(delimiter="\t" if ext == ".tsv" else ",", newlines_in_values=True)
    read = pc.ReadOptions(block_size=8 << 20)
    try:
        with open_stream(path) as f:
            header = pc.open_csv(
                f, read_options=read, parse_options=parse, convert_options=pc.ConvertOptions(include_columns=[])
            )
            names = header.schema.names
        col = opts.text_column if opts.text_column in names else None
        if col is None:
            raise InputError(
                f"{path}: no column {opts.text_column!r}; columns are {names} "
                "(choose one with text_column= / --text-column)"
            )
        first = 0
        with open_stream(path) as f:
            reader = pc.open_csv(
                f,
                read_options=read,
                parse_options=parse,
                convert_options=pc.ConvertOptions(
                    include_columns=[col], column_types={col: pa.string()}, strings_can_be_null=False
                ),
            )
            for rb in reader:
                arr = rb.column(0)
                for start in range(0, len(arr), opts.batch_rows):
                    part = arr.slice(start, opts.batch_rows)
                    yield Batch(path, first, part)
                    first += len(part)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise InputError(f"{path}: not readable as {'TSV' if ext == '.tsv' else 'CSV'} ({e})") from None


def _detect_blank_split(sample: str) -> bool:
    """True when documents look like multi-line paragraphs separated by blank lines:
    blank lines exist, and at least 30% of content lines continue on the next line."""
    lines = sample.split("\n")[:-1]
    content = [i for i, l in enumerate(lines) if l.strip()]
    blanks = len(lines) - len(content)
    if len(content) < 2 or blanks == 0:
        return False
    followed = sum(1 for i in content if i + 1 < len(lines) and lines[i + 1].strip())
    return followed / len(content) >= 0.3


def _text(path: str, opts: ReadOptions, counters: ReadCounters) -> Iterator[Batch]:
    mode = opts.text_split
    first = 0
    line_base = 0  # lines consumed before the current block
    pending: List[str] = []  # lines of an unfinished paragraph (blank mode)
    docs: List[str] = []
    carry = b""
    with open_stream(path) as f:
        while True:
            block = f.read(TEXT_BLOCK_BYTES)
            data = carry + block
            if not block:
                if not data:
                    break
                cut = len(data)
            else:
                cut = data.rfind(b"\n") + 1
                if cut == 0:
                    carry = data
                    continue
            part, carry = data[:cut], data[cut:]
            try:
                text = part.decode("utf-8")
            except UnicodeDecodeError as e:
                if opts.encoding_errors == "strict":
                    line = line_base + part.count(b"\n", 0, e.start) + 1
                    column = e.start - (part.rfind(b"\n", 0, e.start) + 1)
                    raise InputError(
                        f"{path}: line {line}: invalid UTF-8 at byte {column}"
                        " (use encoding_errors='replace' / --encoding-errors replace to replace it)"
                    ) from None
                bad = 0
                lines_raw = part.split(b"\n")
                for lr in lines_raw:
                    try:
                        lr.decode("utf-8")
                    except UnicodeDecodeError:
                        bad += 1
                counters.invalid_utf8_rows += bad
                text = part.decode("utf-8", errors="replace")
            lines = text.split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            line_base += len(lines)
            if mode == "auto":
                mode = "blank" if _detect_blank_split(text[: 1 << 20]) else "line"
                log.info("%s: one document per %s", path, "paragraph" if mode == "blank" else "line")
            for l in lines:
                if l.endswith("\r"):
                    l = l[:-1]
                if mode == "line":
                    docs.append(l)
                elif l.strip():
                    pending.append(l)
                elif pending:
                    docs.append("\n".join(pending))
                    pending = []
            while len(docs) >= opts.batch_rows:
                yield Batch(path, first, pa.array(docs[: opts.batch_rows], type=pa.string()))
                first += opts.batch_rows
                docs = docs[opts.batch_rows :]
            if not block:
                break
    if pending:
        docs.append("\n".join(pending))
    if docs:
        yield Batch(path, first, pa.array(docs, type=pa.string()))


def file_batches(path: str, opts: ReadOptions, counters: ReadCounters) -> Iterator[Batch]:
    ext, codec = split_compression(path)
    counters.files += 1
    if codec is not None and ext in PARQUET_EXT | ARROW_EXT:
        raise InputError(
            f"{path}: a compressed {ext} file is not read: Parquet and Arrow files compress their own "
            "pages; decompress it first"
        )
    if ext in PARQUET_EXT:
        yield from parquet_batches(path, opts)
    elif ext in ARROW_EXT:
        yield from _arrow_ipc(path, opts)
    elif ext in JSONL_EXT:
        yield from _jsonl(path, opts, counters)
    elif ext in CSV_EXT:
        yield from _csv(path, opts)
    else:
        yield from _text(path, opts, counters)


# ---------------------------------------------------------------- in-memory objects


def _iterable_batches(items: Iterable[Any], opts: ReadOptions, where: str) -> Iterator[Batch]:
    col = opts.text_column or "text"
    texts: List[Optional[str]] = []
    first = 0
    for i, item in enumerate(items):
        if isinstance(item, dict):
            if col not in item:
                raise InputError(f"{where}: row {i}: no key {col!r}")
            item = item[col]
        if item is not None and not isinstance(item, str):
            raise InputError(f"{where}: row {i}: expected a string, got {type(item).__name__}")
        texts.append(item)
        if len(texts) >= opts.batch_rows:
            yield Batch(where, first, pa.array(texts, type=pa.string()))
            first += len(texts)
            texts = []
    if texts:
        yield Batch(where, first, pa.array(texts, type=pa.string()))


class read_ahead:
    """Read the next batches in a background thread while the caller works on the
    current one (decoding Parquet/Arrow releases the GIL, and so does ingestion).

    Reading starts at once, so the first batches are decoded while the caller still
    prepares (loads a tokenizer, say). Iterate it once; order and errors are
    preserved. :meth:`close` (or leaving a ``with`` block, or stopping an iteration
    early) stops the reader."""

    _DONE = object()

    def __init__(self, batches: Iterator[Batch], depth: int = 2) -> None:
        import queue
        import threading

        self._batches = batches
        self._q: "queue.Queue[Any]" = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="zipcal-reader", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        import queue

        try:
            for b in self._batches:
                while not self._stop.is_set():
                    try:
                        self._q.put(b, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
            self._q.put(self._DONE)
        except BaseException as e:  # handed to the consumer, raised there
            self._q.put(e)

    def __iter__(self) -> Iterator[Batch]:
        try:
            while True:
                item = self._q.get()
                if item is self._DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.close()

    def close(self) -> None:
        """Stop reading (the reader thread ends at its next batch)."""
        self._stop.set()
        close = getattr(self._batches, "close", None)
        if close is not None and not self._thread.is_alive():
            close()

    def __enter__(self) -> "read_ahead":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def iter_batches(source: Any, opts: ReadOptions, counters: Optional[ReadCounters] = None) -> Iterator[Batch]:
    """Yield :class:`Batch` es of text from any supported source (chat messages
    rendered with ``opts.chat``)."""
    yield from rendered(_iter_batches(source, opts, counters), opts)


def rendered(batches: Iterable[Batch], opts: ReadOptions) -> Iterator[Batch]:
    """``batches`` with every batch of chat messages rendered to text by ``opts.chat``."""
    for b in batches:
        if is_messages_type(b.array.type):
            if opts.chat is None:
                named = opts.text_column  # None or "text": pick_column took "messages"
                raise missing_template_error(b.source, named if named not in (None, "text") else "messages")
            b = Batch(b.source, b.first_row, opts.chat.render_array(b.array, b.source, b.first_row))
        yield b


def _iter_batches(source: Any, opts: ReadOptions, counters: Optional[ReadCounters] = None) -> Iterator[Batch]:
    counters = counters or ReadCounters()
    if isinstance(source, (str, os.PathLike)) or (isinstance(source, (list, tuple)) and _looks_like_paths(source)):
        later = dataclasses.replace(opts, first_batch_rows=0)  # a smaller batch for the first file only
        for k, p in enumerate(expand_paths(source)):
            yield from file_batches(p, opts if k == 0 else later, counters)
        return
    mod = type(source).__module__ or ""
    if isinstance(source, pa.Table):
        col = pick_column(source.schema, opts.text_column, "<pyarrow.Table>")
        yield from _table_batches(source, col, "<pyarrow.Table>", opts.batch_rows)
        return
    if isinstance(source, pa.RecordBatch):
        yield from _reader_batches(
            pa.RecordBatchReader.from_batches(source.schema, [source]), opts.text_column, "<pyarrow.RecordBatch>"
        )
        return
    if isinstance(source, pa.RecordBatchReader):
        yield from _reader_batches(source, opts.text_column, "<pyarrow.RecordBatchReader>")
        return
    if isinstance(source, (pa.Array, pa.ChunkedArray)):
        if not _is_string_type(source.type):
            raise InputError(f"<pyarrow array>: type {source.type}, expected strings")
        yield from _table_batches(pa.table({"text": source}), "text", "<pyarrow array>", opts.batch_rows)
        return
    if mod.startswith("pyarrow") and hasattr(source, "to_batches") and hasattr(source, "schema"):
        # pyarrow.dataset.Dataset / Scanner
        col = pick_column(source.schema, opts.text_column, "<pyarrow.dataset>")
        first = 0
        for rb in source.to_batches(columns=[col]):
            arr = _as_string_array(rb.column(0))
            yield Batch("<pyarrow.dataset>", first, arr)
            first += len(arr)
        return
    if mod.startswith("datasets"):
        if hasattr(source, "flatten_indices") and hasattr(source, "data"):
            ds = source.flatten_indices() if getattr(source, "_indices", None) is not None else source
            table = ds.data.table if hasattr(ds.data, "table") else ds.data
            col = pick_column(table.schema, opts.text_column, "<datasets.Dataset>")
            yield from _table_batches(table, col, "<datasets.Dataset>", opts.batch_rows)
            return
        yield from _iterable_batches(source, opts, "<datasets.IterableDataset>")
        return
    if mod.startswith("pandas") and hasattr(source, "columns"):
        pd_col = opts.text_column if opts.text_column in source.columns else None
        try:
            table = pa.Table.from_pandas(source[[pd_col]] if pd_col else source, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise InputError(f"<pandas.DataFrame>: column {pd_col!r} cannot be read as text ({e})") from None
        col = pick_column(table.schema, opts.text_column, "<pandas.DataFrame>")
        yield from _table_batches(table, col, "<pandas.DataFrame>", opts.batch_rows)
        return
    if hasattr(source, "__arrow_c_stream__"):
        where = f"<{type(source).__module__}.{type(source).__name__}>"
        reader = pa.RecordBatchReader.from_stream(source)
        if pa.types.is_struct(reader.schema.field(0).type) if reader.schema.names == [""] else False:
            raise InputError(f"{where}: expected a table stream")
        yield from _reader_batches(reader, opts.text_column, where)
        return
    if hasattr(source, "__arrow_c_array__"):
        arr = pa.array(source)
        if pa.types.is_struct(arr.type):
            rb = pa.RecordBatch.from_struct_array(arr)
            yield from _reader_batches(
                pa.RecordBatchReader.from_batches(rb.schema, [rb]), opts.text_column, "<arrow array>"
            )
        else:
            yield from _iter_batches(arr, opts, counters)
        return
    if isinstance(source, (bytes, bytearray)) or not hasattr(source, "__iter__"):
        raise InvalidArgumentError(
            f"unsupported source of type {type(source).__name__}: pass a path, a table, a dataset, "
            "an Arrow stream or an iterable of strings"
        )
    yield from _iterable_batches(source, opts, f"<{type(source).__name__}>")

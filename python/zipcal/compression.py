"""Compressed text inputs, and inputs that are not text at all.

A text or JSON-lines file may be compressed: ``.gz``, ``.zst``, ``.bz2``, ``.xz`` or
``.lz4`` (frame format) after its own extension (``c4-train.00000-of-01024.json.gz``,
``shard.jsonl.zst``). The compression is taken from the extension and confirmed by
the stream's magic bytes; the file is decompressed as a stream, a block at a time,
never whole. A file whose bytes are not what its name says, or that is not text at
all (an image, a pickle, an archive, a compressed format zipcal does not read), is
refused with an error that names what it looks like, instead of an invalid-UTF-8
message.
"""

from __future__ import annotations

import bz2
import gzip
import http.client
import io
import lzma
import os
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Optional, Tuple

from . import remote
from .errors import InputError

# extension -> codec
COMPRESSION_EXT = {
    ".gz": "gzip",
    ".gzip": "gzip",
    ".zst": "zstd",
    ".zstd": "zstd",
    ".bz2": "bz2",
    ".xz": "xz",
    ".lz4": "lz4",
}
CODEC_MAGIC = {
    "gzip": b"\x1f\x8b",
    "zstd": b"\x28\xb5\x2f\xfd",
    "bz2": b"BZh",
    "xz": b"\xfd7zXZ\x00",
    "lz4": b"\x04\x22\x4d\x18",
}
CODEC_NAME = {"gzip": "gzip", "zstd": "Zstandard", "bz2": "bzip2", "xz": "xz", "lz4": "LZ4 frame"}
# Leading bytes of formats that are not text (checked after decompression too).
BINARY_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or a .docx/.xlsx/.whl)"),
    (b"PAR1", "a Parquet file (name it .parquet)"),
    (b"ARROW1", "an Arrow IPC file (name it .arrow)"),
    (b"\x7fELF", "an executable (ELF)"),
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    *((magic, f"{CODEC_NAME[codec]} data") for codec, magic in CODEC_MAGIC.items()),
    (b"\x1f\x9d", "Unix compress (.Z) data, which zipcal does not read"),
    (b"\x80\x02", "a Python pickle"),
    (b"\x80\x03", "a Python pickle"),
    (b"\x80\x04\x95", "a Python pickle"),
    (b"\x80\x05\x95", "a Python pickle"),
)
SNIFF_BYTES = 4096


def split_compression(path: "str | os.PathLike[str]") -> Tuple[str, Optional[str]]:
    """(the file's own extension, codec or None): ``a.json.gz`` -> (``.json``, ``gzip``)."""
    p = Path(path)
    codec = COMPRESSION_EXT.get(p.suffix.lower())
    if codec is None:
        return p.suffix.lower(), None
    return Path(p.stem).suffix.lower(), codec


def looks_like(head: bytes) -> Optional[str]:
    """What a file that starts with ``head`` looks like, when that is not text."""
    for magic, what in BINARY_MAGIC:
        if head.startswith(magic):
            return what
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "a tar archive"
    if b"\x00" in head[:SNIFF_BYTES]:
        return "binary data (it holds NUL bytes)"
    return None


def _open_raw(path: str, native: bool = False) -> Any:
    """The stored bytes of a local or remote file, as a binary stream (``native``:
    a pyarrow file for a local path, which pyarrow's decompressors read directly)."""
    if remote.is_url(path):
        return remote.open_input_stream(path)
    if native:
        import pyarrow as pa

        return pa.OSFile(path, "rb")
    return open(path, "rb")


def _sniff(path: str) -> bytes:
    f = _open_raw(path)
    try:
        return f.read(SNIFF_BYTES)
    finally:
        f.close()


def open_stream(path: str) -> BinaryIO:
    """The bytes of a text or JSON-lines file, decompressed as a stream when its name
    says it is compressed. Raises :class:`~zipcal.errors.InputError` naming the file
    when its bytes contradict its name or are not text."""
    _, codec = split_compression(path)
    head = _sniff(path)
    if codec is not None:
        if not head.startswith(CODEC_MAGIC[codec]):
            what = looks_like(head)
            raise InputError(
                f"{path}: the name says {CODEC_NAME[codec]}-compressed, but the file "
                + (f"looks like {what}" if what else "is not (it starts like plain text)")
            )
        stream: Any = _decompressor(path, codec)  # a BufferedReader: it peeks
        try:
            inner = stream.peek(SNIFF_BYTES)[:SNIFF_BYTES]
        except InputError:
            stream.close()
            raise
        what = looks_like(inner)
        if what:
            stream.close()
            raise InputError(f"{path}: after {CODEC_NAME[codec]} decompression the data looks like {what}, not text")
        return stream
    what = looks_like(head)
    if what:
        raise InputError(f"{path}: not a text file: it looks like {what}")
    if remote.is_url(path):
        return io.BufferedReader(_Guarded(_open_raw(path), path, None), buffer_size=1 << 20)
    return open(path, "rb")


def _decompressor(path: str, codec: str) -> BinaryIO:
    raw = _open_raw(path, native=codec in ("zstd", "lz4"))
    if codec == "gzip":
        inner: Any = gzip.GzipFile(fileobj=raw, mode="rb")
    elif codec == "bz2":
        inner = bz2.BZ2File(raw, "rb")
    elif codec == "xz":
        inner = lzma.LZMAFile(raw, "rb")
    else:
        import pyarrow as pa

        inner = pa.CompressedInputStream(raw if isinstance(raw, pa.NativeFile) else pa.PythonFile(raw, mode="r"), codec)
    return io.BufferedReader(_Guarded(inner, path, codec, also_close=raw), buffer_size=1 << 20)


class _Guarded(io.RawIOBase):
    """A (decompressing) stream as a raw binary file whose errors name the file: a
    damaged or truncated stream, or a connection lost, is an :class:`InputError`,
    not a deep traceback. ``codec`` None: the stored bytes themselves."""

    def __init__(self, stream: Any, path: str, codec: Optional[str], also_close: Any = None) -> None:
        self._s = stream
        self._where = (path, codec)
        self._pos = 0
        self._also = also_close

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        try:
            data = self._s.read(len(b))
        except (EOFError, OSError, ValueError, lzma.LZMAError, zlib.error, http.client.HTTPException) as e:
            path, codec = self._where
            if codec is None:
                raise InputError(f"{path}: reading failed after {self._pos} bytes ({e})") from None
            raise InputError(
                f"{path}: damaged {CODEC_NAME[codec]} stream after {self._pos} decompressed bytes ({e})"
            ) from None
        n = len(data)
        b[:n] = data
        self._pos += n
        return n

    def close(self) -> None:
        self._s.close()
        if self._also is not None:
            self._also.close()
        super().close()

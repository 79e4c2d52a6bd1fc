"""Tokenizers built offline for the tests: GPT-2 BPE, a SentencePiece Unigram model read
from ``mistral-common``'s ``tokenizer.model.v1``, and SmolLM2's ``tokenizer.json``."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Iterator, List, Optional, Set, Tuple

from zipcal.tokenizer import package_dir

# SentencePiece piece types (sentencepiece_model.proto, SentencePiece.Type)
SP_NORMAL = 1
SP_UNKNOWN = 2
SP_CONTROL = 3
SP_USER_DEFINED = 4
SP_UNUSED = 5
SP_BYTE = 6

NO_TYPE = 2**32 - 1


# ------------------------------------------------------------------ protobuf


def _varint(buf: bytes, pos: int) -> Tuple[int, int]:
    value = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def iter_fields(buf: bytes) -> Iterator[Tuple[int, int, object]]:
    """(field number, wire type, value) of each field of a serialized message. Length-delimited
    values are returned as bytes, fixed32/fixed64 as raw bytes, varints as ints."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire} (field {field})")
        if pos > len(buf):
            raise ValueError("truncated message")
        yield field, wire, value


def sentencepiece_pieces(path: Path) -> List[Tuple[str, float, int]]:
    """(piece, score, type) of every piece of a SentencePiece ``ModelProto`` file."""
    pieces: List[Tuple[str, float, int]] = []
    for field, wire, value in iter_fields(Path(path).read_bytes()):
        if field != 1 or wire != 2:
            continue
        piece, score, kind = "", 0.0, SP_NORMAL
        for f, w, v in iter_fields(value):  # type: ignore[arg-type]
            if f == 1 and w == 2:
                piece = v.decode("utf-8")  # type: ignore[union-attr]
            elif f == 2 and w == 5:
                score = struct.unpack("<f", v)[0]  # type: ignore[arg-type]
            elif f == 3 and w == 0:
                kind = int(v)  # type: ignore[arg-type]
        pieces.append((piece, score, kind))
    return pieces


def sentencepiece_tokenizer_json(path: Path) -> str:
    """A ``tokenizer.json`` (Unigram model, Metaspace pre-tokenizer and decoder) made from
    the pieces and scores of a SentencePiece model; control and unknown pieces become
    special added tokens."""
    pieces = sentencepiece_pieces(path)
    if not pieces:
        raise ValueError(f"{path}: no pieces")
    unk_id = next((i for i, p in enumerate(pieces) if p[2] == SP_UNKNOWN), None)
    has_bytes = any(p[2] == SP_BYTE for p in pieces)
    added = [
        {
            "id": i,
            "content": piece,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for i, (piece, _, kind) in enumerate(pieces)
        if kind in (SP_CONTROL, SP_UNKNOWN)
    ]
    metaspace = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}
    decoders = [metaspace]
    if has_bytes:
        decoders = [{"type": "ByteFallback"}, metaspace]
    config = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": metaspace,
        "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": decoders},
        "model": {
            "type": "Unigram",
            "unk_id": unk_id,
            "vocab": [[piece, float(score)] for piece, score, _ in pieces],
            "byte_fallback": has_bytes,
        },
    }
    return json.dumps(config, ensure_ascii=False)


def mistral_v1_model() -> Optional[Path]:
    d = package_dir("mistral_common")
    if d is None:
        return None
    f = d / "data" / "tokenizer.model.v1"
    return f if f.is_file() else None


# ------------------------------------------------------------------ reference types


def special_ids(tok) -> Set[int]:
    return {i for i, t in tok.get_added_tokens_decoder().items() if t.special}


def reference_type(tok, token_id: int, specials: Set[int]) -> Optional[str]:
    """The type of one token id computed with the Python ``tokenizers`` package."""
    if token_id in specials:
        return None
    raw = tok.id_to_token(token_id)
    if raw is None:
        return None
    s = tok.decode([token_id], skip_special_tokens=False)
    if "\ufffd" in s or (s == "" and raw != ""):
        s = raw
    s = s.replace("\u0120", "").replace("\u2581", "").strip().lower()
    return s or None

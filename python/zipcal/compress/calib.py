"""Turn the many shapes calibration data comes in into ``input_ids`` + ``attention_mask``."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from ..errors import ZipcalError

log = logging.getLogger(__name__)


class CalibrationError(ZipcalError, ValueError):
    """Calibration data that cannot be used (bad shape, wrong column, vocab mismatch...)."""


def read_texts(path: "str | os.PathLike[str]", column: str = "text") -> List[str]:
    """Texts of a ``.parquet`` / ``.jsonl`` file (``column``), or a ``.txt`` file read whole."""
    p = Path(path)
    if not p.is_file():
        raise CalibrationError(f"calibration file not found: {p}")
    suffix = p.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(p)
        if column not in table.column_names:
            raise CalibrationError(f"{p}: no {column!r} column (columns: {', '.join(table.column_names)})")
        texts = table.column(column).to_pylist()
    elif suffix in (".jsonl", ".ndjson"):
        texts = []
        with p.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise CalibrationError(f"{p}:{lineno}: invalid JSON ({exc.msg})") from None
                if not isinstance(rec, dict) or column not in rec:
                    raise CalibrationError(f"{p}:{lineno}: record has no {column!r} field")
                texts.append(rec[column])
    elif suffix == ".txt":
        texts = [p.read_text(encoding="utf-8")]
    else:
        raise CalibrationError(f"{p}: unsupported calibration file type {suffix!r} (use .parquet or .jsonl)")
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise CalibrationError(f"{p}: no non-empty texts in column {column!r}")
    return texts


SELECTION_COLUMNS = ("row", "source", "source_row", "window", "tokens", "gain", "text")


def read_selection(path: "str | os.PathLike[str]") -> Optional[Dict[str, Any]]:
    """``{"texts", "rows", "seq_len"}`` of a file written by ``zipcal select`` (None for
    any other file). ``rows`` and ``seq_len`` come from a Parquet file's metadata
    (None in JSONL files, which carry none)."""
    p = Path(path)
    if not p.is_file():
        return None
    if p.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        schema = pq.read_schema(p)
        if not set(SELECTION_COLUMNS) <= set(schema.names):
            return None
        meta = json.loads((schema.metadata or {}).get(b"zipcal", b"{}"))
        texts = pq.read_table(p, columns=["text"]).column("text").to_pylist()
        return {"texts": texts, "rows": meta.get("n"), "seq_len": meta.get("seq_len")}
    if p.suffix.lower() in (".jsonl", ".ndjson"):
        with p.open(encoding="utf-8") as fh:
            first = fh.readline()
        try:
            rec = json.loads(first)
        except json.JSONDecodeError:
            return None
        if not isinstance(rec, dict) or not set(SELECTION_COLUMNS) <= set(rec):
            return None
        return {"texts": read_texts(p), "rows": None, "seq_len": None}
    return None


def pack_selection(texts: List[str], tokenizer: Any, seq_len: int, rows: Optional[int]) -> Dict[str, Any]:
    """Rows of a saved selection, packed as :meth:`zipcal.Selection.to_input_ids` packs
    them by default (``fill``): each text is a candidate's fed slice; texts as long as
    a row take one each, shorter ones are joined with EOS and cut into rows, every row
    starting (and ending) with the special tokens the tokenizer adds to a sequence."""
    import torch

    from ..packing import fill, layout
    from ..tokenizer import SPECIALS_PROBE, specials_around

    if tokenizer is None:
        raise CalibrationError("text calibration data needs a tokenizer")
    before, after = specials_around(
        tokenizer(SPECIALS_PROBE, add_special_tokens=False)["input_ids"],
        tokenizer(SPECIALS_PROBE, add_special_tokens=True)["input_ids"],
    )
    capacity = seq_len - len(before) - len(after)
    if capacity <= 0:
        raise CalibrationError(f"seq_len {seq_len} leaves no room for text after special tokens")
    eos = getattr(tokenizer, "eos_token_id", None)
    pieces = [np.asarray(tokenizer(t, add_special_tokens=False)["input_ids"][:capacity], dtype=np.int64) for t in texts]
    segs = layout([len(x) for x in pieces], rows, capacity, 1 if eos is not None else 0)
    content = fill(pieces, segs, eos if eos is not None else 0)
    if not content:
        raise CalibrationError("every calibration text tokenized to zero tokens")
    pad = _pad_id(tokenizer)
    input_ids = torch.full((len(content), seq_len), pad, dtype=torch.long)
    mask = torch.zeros((len(content), seq_len), dtype=torch.long)
    for i, r in enumerate(content):
        row = torch.from_numpy(np.concatenate([before, r, after]))
        input_ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return {"input_ids": input_ids, "attention_mask": mask}


def _pad_id(tokenizer: Any) -> int:
    for attr in ("pad_token_id", "eos_token_id", "unk_token_id"):
        v = getattr(tokenizer, attr, None)
        if v is not None:
            return int(v)
    return 0


def tokenize_texts(texts: List[str], tokenizer: Any, seq_len: Optional[int]) -> Dict[str, Any]:
    """Tokenize each text separately, truncate to ``seq_len``, right-pad with a mask."""
    import torch

    if tokenizer is None:
        raise CalibrationError("text calibration data needs a tokenizer")
    max_len = seq_len if seq_len is not None else 2048
    rows: List[List[int]] = []
    for t in texts:
        ids = tokenizer(t, add_special_tokens=True)["input_ids"]
        ids = list(ids[:max_len])
        if ids:
            rows.append(ids)
    if not rows:
        raise CalibrationError("every calibration text tokenized to zero tokens")
    width = max(len(r) for r in rows)
    pad = _pad_id(tokenizer)
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        input_ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return {"input_ids": input_ids, "attention_mask": mask}


def _as_long_tensor(x: Any, what: str):
    import torch

    if isinstance(x, torch.Tensor):
        t = x
    elif isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.integer) and not np.issubdtype(x.dtype, np.bool_):
            raise CalibrationError(f"{what} must be an integer array, got dtype {x.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(x).astype(np.int64))
    elif isinstance(x, (list, tuple)):
        try:
            t = torch.tensor(x)
        except (ValueError, TypeError) as exc:
            raise CalibrationError(f"{what}: cannot build a rectangular tensor ({exc})") from None
    else:
        raise CalibrationError(f"{what}: unsupported type {type(x).__name__}")
    if t.is_floating_point() or t.is_complex():
        raise CalibrationError(f"{what} must hold integers, got {t.dtype}")
    if t.dim() == 1:
        t = t.unsqueeze(0)
    if t.dim() != 2:
        raise CalibrationError(f"{what} must be [n, seq_len], got shape {tuple(t.shape)}")
    return t.long()


def load_calibration(
    calib: Any,
    tokenizer: Any = None,
    seq_len: Optional[int] = None,
    n: Optional[int] = None,
    text_column: str = "text",
) -> Dict[str, Any]:
    """Normalise calibration data to ``{"input_ids": LongTensor[n, L], "attention_mask": LongTensor[n, L]}``.

    Accepts a torch tensor / numpy integer array ``[n, L]``; a dict with
    ``input_ids`` (and optionally ``attention_mask``); any object with a
    ``to_input_ids(tokenizer=..., seq_len=..., return_tensors="pt")`` method
    (such as a selection result); a list of strings; or a path to a
    ``.parquet``/``.jsonl`` file with a ``text`` column (each text is tokenized
    with ``tokenizer``, truncated to ``seq_len`` and right-padded; a file written by
    ``zipcal select`` is packed into full rows as the selection packs them, see
    :func:`pack_selection`).
    ``seq_len`` truncates, ``n`` keeps the first ``n`` sequences.
    """
    import torch

    if hasattr(calib, "to_input_ids") and callable(calib.to_input_ids):
        calib = calib.to_input_ids(tokenizer=tokenizer, seq_len=seq_len, return_tensors="pt")
    saved = read_selection(calib) if isinstance(calib, (str, os.PathLike)) and text_column == "text" else None
    if saved is not None:
        length = seq_len or saved["seq_len"] or 2048
        out = pack_selection(saved["texts"], tokenizer, length, saved["rows"] if n is None else n)
    elif isinstance(calib, (str, os.PathLike)):
        out = tokenize_texts(read_texts(calib, text_column), tokenizer, seq_len)
    elif isinstance(calib, (list, tuple)) and calib and all(isinstance(t, str) for t in calib):
        out = tokenize_texts(list(calib), tokenizer, seq_len)
    elif isinstance(calib, dict) or (hasattr(calib, "keys") and "input_ids" in calib):
        if "input_ids" not in calib:
            raise CalibrationError("calibration dict has no 'input_ids'")
        ids = _as_long_tensor(calib["input_ids"], "input_ids")
        am = calib.get("attention_mask") if hasattr(calib, "get") else None
        if am is None:
            mask = torch.ones_like(ids)
        else:
            mask = _as_long_tensor(am, "attention_mask")
            if mask.shape != ids.shape:
                raise CalibrationError(
                    f"attention_mask shape {tuple(mask.shape)} != input_ids shape {tuple(ids.shape)}"
                )
        out = {"input_ids": ids, "attention_mask": mask}
    else:
        ids = _as_long_tensor(calib, "calibration data")
        out = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    ids, mask = out["input_ids"], out["attention_mask"]
    if seq_len is not None:
        ids, mask = ids[:, :seq_len], mask[:, :seq_len]
    if n is not None:
        if ids.shape[0] < n:
            log.warning("asked for %d calibration sequences, only %d available", n, ids.shape[0])
        ids, mask = ids[:n], mask[:n]
    keep = mask.sum(1) > 0
    if not bool(keep.all()):
        ids, mask = ids[keep], mask[keep]
    if ids.numel() == 0:
        raise CalibrationError("calibration data is empty")
    if int(ids.min()) < 0:
        raise CalibrationError("calibration input_ids contain negative ids")
    return {"input_ids": ids.contiguous(), "attention_mask": mask.contiguous()}


def check_vocab(input_ids: Any, model: Any) -> None:
    """Raise :class:`CalibrationError` if a token id does not fit the model's embedding."""
    emb = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if emb is None or not hasattr(emb, "num_embeddings"):
        return
    vmax = int(input_ids.max())
    if vmax >= emb.num_embeddings:
        raise CalibrationError(
            f"token id {vmax} is outside the model's embedding table ({emb.num_embeddings} rows): "
            "tokenizer and model do not match"
        )


def check_tokenizer_fits(tokenizer: Any, model: Any) -> None:
    """Raise if the tokenizer can produce ids the model's embedding cannot hold."""
    emb = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if emb is None or not hasattr(emb, "num_embeddings") or tokenizer is None:
        return
    vocab = len(tokenizer)
    if vocab > emb.num_embeddings:
        raise CalibrationError(
            f"tokenizer vocabulary ({vocab} tokens) is larger than the model's embedding "
            f"({emb.num_embeddings} rows): tokenizer and model do not match"
        )

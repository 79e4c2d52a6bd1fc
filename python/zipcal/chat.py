"""Chat data: ``messages`` columns rendered with a model's chat template.

Instruct and reasoning models are calibrated on text laid out as they see it at
inference: the conversation rendered by the model's own chat template (role
markers, system prompt, end-of-turn tokens). A column of messages (a list of
``{"role", "content"}`` records per row, as in ultrachat-style JSONL or Parquet) is
rendered row by row with the template before tokenization, so selection runs on
the rendered text and the rows handed to the compressor are what the model reads.

The template's own tokens (role names, a default system prompt) would otherwise be
"covered" by every conversation; their types are excluded from coverage
(:attr:`ChatTemplate.template_types`), so coverage measures the conversations'
content.

Rendering goes through transformers' ``apply_chat_template`` (the reference
implementation of Hugging Face chat templates), with ``add_generation_prompt=False``
and a fixed ``date_string`` so that templates that print today's date render the
same text on every run.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pyarrow as pa

from .errors import InputError, MissingDependencyError, TokenizerError

# Templates that print the current date (Llama 3.x) take it from ``date_string``
# when it is given; a fixed date keeps rendering deterministic.
FIXED_DATE = "01 Jan 2025"

_STRING = (pa.string(), pa.large_string(), pa.string_view())

# The messages type zipcal builds itself (JSON lines read line by line).
MESSAGES_TYPE = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))


def is_messages_type(t: pa.DataType) -> bool:
    """True for a list of structs with string ``role`` and ``content`` fields."""
    if not (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t)):
        return False
    item = t.value_type
    if not pa.types.is_struct(item):
        return False
    names = {item.field(i).name: item.field(i).type for i in range(item.num_fields)}
    return names.get("role") in _STRING and names.get("content") in _STRING


class ChatTemplate:
    """A model's chat template, loaded on first use.

    ``source``: a transformers tokenizer with a chat template, a model or tokenizer
    folder (its ``tokenizer_config.json`` / ``chat_template.jinja``), a
    ``tokenizer.json`` path (its folder is used), or a Hugging Face hub name.
    ``kwargs`` are passed to the template (for example ``enable_thinking=False``).
    """

    def __init__(self, source: Any, **kwargs: Any) -> None:
        self.source = source
        self.kwargs: Dict[str, Any] = {"date_string": FIXED_DATE, **kwargs}
        self._tokenizer: Any = None
        self.used = False

    def __repr__(self) -> str:
        return f"ChatTemplate({self.describe()})"

    def describe(self) -> str:
        s = self.source
        return s if isinstance(s, str) else os.fspath(s) if isinstance(s, os.PathLike) else type(s).__name__

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            self._tokenizer = _load(self.source)
        return self._tokenizer

    @property
    def template(self) -> str:
        """The template text (what a manifest hashes)."""
        t = self.tokenizer.chat_template
        return t if isinstance(t, str) else repr(t)

    def render(self, conversations: Sequence[Any], where: str = "<messages>", first_row: int = 0) -> List[Any]:
        """The rendered text of each conversation (None stays None)."""
        self.used = True
        idx = [i for i, c in enumerate(conversations) if c is not None]
        convs = [conversation(conversations[i], f"{where} row {first_row + i}") for i in idx]
        out: List[Any] = [None] * len(conversations)
        if not convs:
            return out
        try:
            texts = self._apply(convs)
        except Exception:
            texts = [self._render_one(c, where, first_row + i) for i, c in zip(idx, convs)]
        for i, t in zip(idx, texts):
            out[i] = t
        return out

    def _apply(self, convs: Any) -> Any:
        """The template applied to one conversation (a string) or a list of them."""
        return self.tokenizer.apply_chat_template(convs, tokenize=False, add_generation_prompt=False, **self.kwargs)

    def _render_one(self, conv: List[Dict[str, str]], where: str, row: int) -> str:
        try:
            return self._apply(conv)
        except Exception as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"{where} row {row}: the chat template refused this conversation ({msg})") from None

    def render_array(self, arr: pa.Array, where: str, first_row: int) -> pa.Array:
        """A string array of the rendered conversations of a messages array."""
        return pa.array(self.render(arr.to_pylist(), where, first_row), type=pa.string())

    def skeletons(self) -> List[str]:
        """The template's own text: conversations with empty contents (with and
        without a system turn, as templates insert a default system prompt when
        there is none)."""
        shapes = [
            [{"role": "user", "content": ""}, {"role": "assistant", "content": ""}],
            [{"role": "system", "content": ""}, {"role": "user", "content": ""}, {"role": "assistant", "content": ""}],
            [{"role": "user", "content": ""}],
        ]
        out = []
        for conv in shapes:
            try:
                out.append(self._apply(conv))
            except Exception:  # a template that refuses this shape
                continue
        return out

    def template_types(self, segmenter: Any) -> np.ndarray:
        """Type ids (in ``segmenter``'s types) of the template's own tokens."""
        from . import _core

        types = segmenter.token_types()
        found = [types[np.asarray(ids, dtype=np.int64)] for ids in segmenter.encode_batch(self.skeletons(), False)]
        flat = np.concatenate(found) if found else np.zeros(0, dtype=np.uint32)
        return np.unique(flat[flat != _core.NO_TYPE]).astype(np.uint32)


def conversation(conv: Any, where: str, column: Optional[str] = None) -> List[Dict[str, str]]:
    """``conv`` checked as a conversation: a list of records with a string ``role``
    and string content (a null content reads as empty). Errors start with ``where``
    (the file and row or line) and name the message, and ``column`` when given."""
    of = f" of {column!r}" if column else ""
    if not isinstance(conv, list):
        what = f"column {column!r}" if column else "messages"
        raise InputError(f"{where}: {what} is {type(conv).__name__}, expected a list of {{role, content}} records")
    out = []
    for k, m in enumerate(conv):
        role = m.get("role") if isinstance(m, dict) else None
        content = m.get("content") if isinstance(m, dict) else None
        if not isinstance(role, str):
            raise InputError(f"{where}: message {k}{of} has no role")
        if content is not None and not isinstance(content, str):
            raise InputError(f"{where}: message {k}{of} has no string content (content parts are not supported)")
        out.append({"role": role, "content": content or ""})
    return out


def _load(source: Any) -> Any:
    """A transformers tokenizer with a chat template, from ``source``."""
    if hasattr(source, "apply_chat_template"):
        tok = source
    else:
        try:
            from transformers import AutoTokenizer
        except ImportError:
            raise MissingDependencyError(
                "rendering chat messages needs transformers (for the chat template): pip install transformers"
            ) from None
        path = _folder(source)
        try:
            tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError, TypeError) as exc:
            raise TokenizerError(f"{source}: cannot load a tokenizer with a chat template ({exc})") from None
    if not getattr(tok, "chat_template", None):
        raise TokenizerError(
            f"{_name(source)} has no chat template: pass chat_template= / --chat-template (the model's "
            "folder or hub name)"
        )
    return tok


def _folder(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        p = os.fspath(source)
        if os.path.isfile(p):
            return os.path.dirname(os.path.abspath(p))
        if os.path.isdir(p):
            return p
        from . import hub

        if hub.is_hub_name(p):
            return os.fspath(hub.resolve_tokenizer_dir(p))
        raise TokenizerError(f"{p}: no such chat template source (a model folder, tokenizer folder or hub name)")
    raise TokenizerError(
        f"chat templates come from a model folder, a hub name or a transformers tokenizer, not a "
        f"{type(source).__name__}"
    )


def _name(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return type(source).__name__


def resolve(chat_template: Any, tokenizer: Any) -> Optional[ChatTemplate]:
    """The template for a pool: ``chat_template`` when given (a :class:`ChatTemplate`
    or a source for one), else the tokenizer's own when it can carry one (a folder,
    hub name or transformers tokenizer), loaded only if a messages column is met."""
    if isinstance(chat_template, ChatTemplate):
        return chat_template
    if chat_template is not None:
        return ChatTemplate(chat_template)
    if tokenizer is None or tokenizer in ("words", "gpt2"):
        return None
    if isinstance(tokenizer, str) and tokenizer.lstrip().startswith("{"):
        return None
    if hasattr(tokenizer, "apply_chat_template") or isinstance(tokenizer, (str, os.PathLike)):
        return ChatTemplate(tokenizer)
    return None


def missing_template_error(where: str, column: str) -> InputError:
    return InputError(
        f"{where}: column {column!r} holds chat messages; rendering them needs a chat template: pass "
        "chat_template= / --chat-template (the model's folder or hub name), or a --tokenizer that has one"
    )

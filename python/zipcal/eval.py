"""Evaluation of (compressed) causal LMs: perplexity and zero-shot multiple choice.

* :func:`perplexity` follows the usual WikiText-2 protocol of the pruning and
  quantization literature: documents joined with ``"\\n\\n"``, tokenized once,
  cut into non-overlapping ``seq_len`` windows (the tail shorter than a window
  is dropped), mean negative log-likelihood over every predicted token,
  exponentiated.
* :func:`multiple_choice` scores JSONL tasks (``{"context", "choices", "label"}``
  per line) by log-likelihood of each choice: ``acc`` takes the highest total
  log-likelihood, ``acc_norm`` the highest log-likelihood per character.
* :func:`lm_eval_tasks` hands the model to EleutherAI ``lm-eval`` when installed.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

from .errors import ZipcalError

log = logging.getLogger(__name__)

TextLike = Union[str, "os.PathLike[str]", Sequence[str]]


class EvalError(ZipcalError, ValueError):
    """Evaluation input that cannot be used."""


def _looks_like_path(s: str) -> bool:
    if "\n" in s or len(s) > 4096:
        return False
    if s.endswith((".txt", ".parquet", ".jsonl", ".raw", ".tokens")) or os.sep in s:
        return True
    try:
        return Path(s).exists()
    except OSError:
        return False


def load_eval_text(text_or_path: TextLike, column: str = "text") -> str:
    """Evaluation text: a plain text file is read whole; ``.parquet``/``.jsonl``
    rows (``column``) and lists of strings are joined with ``"\\n\\n"``; any other
    string is used as the text itself."""
    if isinstance(text_or_path, (list, tuple)):
        return "\n\n".join(text_or_path)
    if isinstance(text_or_path, os.PathLike) or (isinstance(text_or_path, str) and _looks_like_path(text_or_path)):
        p = Path(text_or_path)
        if p.is_dir():
            for name in ("test.txt", "wiki.test.raw", "wiki.test.tokens"):
                if (p / name).is_file():
                    p = p / name
                    break
        if not p.is_file():
            raise EvalError(f"evaluation text file not found: {p}")
        if p.suffix.lower() in (".parquet", ".jsonl", ".ndjson"):
            from zipcal.compress.calib import read_texts

            return "\n\n".join(read_texts(p, column))
        return p.read_text(encoding="utf-8")
    if isinstance(text_or_path, str):
        return text_or_path
    raise EvalError(f"unsupported evaluation text type {type(text_or_path).__name__}")


def _model_device(model: Any):
    import torch

    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _resolve_device(model: Any, device: Any):
    import torch

    if device is None:
        return _model_device(model)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def perplexity_stats(
    model: Any,
    tokenizer: Any,
    text_or_path: TextLike,
    seq_len: int = 2048,
    max_windows: Optional[int] = None,
    batch_size: int = 1,
    device: Any = None,
    progress: bool = False,
) -> Dict[str, Any]:
    """Perplexity with details: ``{"ppl", "nll", "tokens", "windows", "seq_len"}``.

    ``device=None`` evaluates where the model already is; ``"auto"`` moves it to
    CUDA when available.
    """
    import torch
    import torch.nn.functional as F

    text = load_eval_text(text_or_path)
    ids = tokenizer(text, return_tensors="pt")["input_ids"][0]
    if seq_len < 2:
        raise EvalError("seq_len must be at least 2")
    n_windows = ids.numel() // seq_len
    if max_windows is not None:
        n_windows = min(n_windows, int(max_windows))
    if n_windows == 0:
        raise EvalError(f"text has {ids.numel()} tokens, fewer than one window of {seq_len}")
    emb = model.get_input_embeddings()
    if int(ids[: n_windows * seq_len].max()) >= emb.num_embeddings:
        raise EvalError("tokenizer produces ids outside the model's embedding table: tokenizer and model do not match")
    dev = _resolve_device(model, device)
    if dev != _model_device(model):
        model.to(dev)
    windows = ids[: n_windows * seq_len].reshape(n_windows, seq_len)
    model.eval()
    total_nll = 0.0
    total_tok = 0
    starts: Iterable[int] = range(0, n_windows, batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(list(starts), desc="perplexity", leave=False)
    with torch.no_grad():
        for s in starts:
            batch = windows[s : s + batch_size].to(dev)
            logits = model(input_ids=batch, use_cache=False).logits
            logits = logits[:, :-1, :].float()
            target = batch[:, 1:]
            nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="sum")
            total_nll += float(nll)
            total_tok += target.numel()
    mean = total_nll / total_tok
    return {"ppl": math.exp(mean), "nll": mean, "tokens": total_tok, "windows": n_windows, "seq_len": seq_len}


def perplexity(
    model: Any,
    tokenizer: Any,
    text_or_path: TextLike,
    seq_len: int = 2048,
    max_windows: Optional[int] = None,
    **kwargs: Any,
) -> float:
    """WikiText-2-style perplexity (see module docstring). ``max_windows`` caps the
    number of ``seq_len`` windows evaluated (the first ones)."""
    return perplexity_stats(model, tokenizer, text_or_path, seq_len, max_windows, **kwargs)["ppl"]


# --------------------------------------------------------------------------
# multiple choice
# --------------------------------------------------------------------------
def read_tasks(tasks_jsonl: "str | os.PathLike[str] | Sequence[Dict[str, Any]]") -> List[Dict[str, Any]]:
    if not isinstance(tasks_jsonl, (str, os.PathLike)):
        items = list(tasks_jsonl)
    else:
        p = Path(tasks_jsonl)
        if not p.is_file():
            raise EvalError(f"task file not found: {p}")
        items = []
        with p.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise EvalError(f"{p}:{lineno}: invalid JSON ({exc.msg})") from None
    for i, it in enumerate(items):
        if not isinstance(it, dict) or "context" not in it or "choices" not in it or "label" not in it:
            raise EvalError(f"task item {i} needs 'context', 'choices' and 'label'")
        if not isinstance(it["choices"], list) or len(it["choices"]) < 2:
            raise EvalError(f"task item {i}: 'choices' must be a list of at least two strings")
        if not (isinstance(it["label"], int) and 0 <= it["label"] < len(it["choices"])):
            raise EvalError(f"task item {i}: 'label' must index into 'choices'")
    return items


def _continuation(context: str, choice: str) -> str:
    if context and choice and not context[-1].isspace() and not choice[0].isspace():
        return " " + choice
    return choice


def choice_loglikelihoods(
    model: Any, tokenizer: Any, context: str, choices: Sequence[str], device: Any = None
) -> List[float]:
    """Sum of log-probabilities of each choice's tokens given the context.

    Context and continuation are tokenized as one string and split at the
    context's token length, so merges across the boundary go to the choice.
    A space is inserted between them when neither side provides whitespace.
    """
    import torch

    dev = _resolve_device(model, device)
    ctx_ids = tokenizer(context, add_special_tokens=False)["input_ids"]
    bos = getattr(tokenizer, "bos_token_id", None)
    if not ctx_ids:
        ctx_ids = [bos if bos is not None else (tokenizer.eos_token_id or 0)]
    out = []
    with torch.no_grad():
        for choice in choices:
            cont = _continuation(context, choice)
            whole = tokenizer(context + cont, add_special_tokens=False)["input_ids"]
            n_ctx = len(ctx_ids)
            if whole[:n_ctx] != ctx_ids or len(whole) <= n_ctx:
                cont_ids = tokenizer(cont, add_special_tokens=False)["input_ids"]
                whole = ctx_ids + cont_ids
            seq = torch.tensor([whole], device=dev)
            logp = torch.log_softmax(model(input_ids=seq, use_cache=False).logits[0, :-1].float(), dim=-1)
            tgt = seq[0, 1:]
            lp = logp.gather(1, tgt.unsqueeze(1)).squeeze(1)[n_ctx - 1 :]
            out.append(float(lp.sum()))
    return out


def multiple_choice(
    model: Any,
    tokenizer: Any,
    tasks_jsonl: "str | os.PathLike[str] | Sequence[Dict[str, Any]]",
    limit: Optional[int] = None,
    device: Any = None,
) -> Dict[str, Any]:
    """Zero-shot accuracy by log-likelihood: ``{"acc", "acc_norm", "n"}``.

    ``acc_norm`` divides each choice's log-likelihood by its length in characters.
    """
    items = read_tasks(tasks_jsonl)
    if limit is not None:
        items = items[:limit]
    model.eval()
    correct = correct_norm = 0
    for it in items:
        lls = choice_loglikelihoods(model, tokenizer, it["context"], it["choices"], device)
        norm = [ll / max(len(_continuation(it["context"], c)), 1) for ll, c in zip(lls, it["choices"])]
        correct += int(max(range(len(lls)), key=lambda i: lls[i]) == it["label"])
        correct_norm += int(max(range(len(norm)), key=lambda i: norm[i]) == it["label"])
    n = len(items)
    return {"acc": correct / n if n else float("nan"), "acc_norm": correct_norm / n if n else float("nan"), "n": n}


# --------------------------------------------------------------------------
# lm-eval adapter
# --------------------------------------------------------------------------
def lm_eval_tasks(
    model: Any, tokenizer: Any, tasks: Sequence[str], batch_size: int = 1, **kwargs: Any
) -> Dict[str, Any]:
    """Run EleutherAI ``lm-eval`` tasks on an in-memory model (needs ``pip install lm-eval``).

    Returns lm-eval's ``results`` dict. Task data is whatever lm-eval finds
    locally or downloads itself; this function adds no downloads of its own.
    """
    try:
        import lm_eval
        from lm_eval.models.huggingface import HFLM
    except ImportError:
        raise ImportError("lm_eval_tasks needs EleutherAI lm-eval: pip install lm-eval") from None
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
    res = lm_eval.simple_evaluate(model=lm, tasks=list(tasks), **kwargs)
    return res["results"] if isinstance(res, dict) and "results" in res else res

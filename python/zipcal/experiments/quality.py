"""Quality experiment: calibration strategy x compression method x seed.

For every seed a candidate pool of ``pool_size`` documents is drawn (seeded) from
the mixed offline corpus (:mod:`zipcal.experiments.mixed_corpus`); every strategy selects ``n``
calibration samples from that same pool, so comparisons between strategies are
paired by seed. For each cell a fresh copy of the dense model is compressed with
the selection (``seq_len`` tokens per sample) and evaluated: WikiText-2 *test*
perplexity (first ``eval_tokens`` tokens, non-overlapping ``eval_seq_len``
windows), held-out perplexity on each pool source, and zero-shot
multiple-choice accuracy (the first ``mc_examples`` examples of each task,
log-likelihood scoring as :func:`zipcal.eval.multiple_choice`) on tasks built at
run time from held-out text (:mod:`zipcal.experiments.tasks`: last-word prediction and
true-continuation choice), and on BIG-bench tasks where their files were extracted
(``python -m zipcal.experiments.bigbench extract``). The dense model is evaluated the
same way.

Results go to ``<out>/results.json`` after every cell (resumable: cells already
there are skipped), with ``report.md`` and ``quality_vs_time.png`` regenerated
from the JSON. All files are written atomically.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime as _dt
import inspect
import json
import logging
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..files import atomic_path
from .bigbench import FORMAT_VERSION as BIGBENCH_FORMAT
from .bigbench import task_files
from .mixed_corpus import DEFAULT_WIKITEXT_DIR, POOL_VERSION, SOURCES, build_pool
from .significance import mean_std, paired_test
from .tasks import FORMAT_VERSION as BUILT_FORMAT
from .tasks import TASKS as MC_TASKS
from .tasks import build_tasks

log = logging.getLogger(__name__)

STRATEGIES = ("random", "zipcal", "zipcal-mix", "zipcal-zipf", "perplexity", "cola", "self-gen")
MODEL_STRATEGIES = ("perplexity", "cola", "self-gen")
METHODS: Dict[str, Dict[str, Any]] = {
    "wanda-50": {"kind": "prune", "method": "wanda", "sparsity": 0.5},
    "wanda-2:4": {"kind": "prune", "method": "wanda", "structure": "2:4"},
    "sparsegpt-50": {"kind": "prune", "method": "sparsegpt", "sparsity": 0.5},
    "sparsegpt-60": {"kind": "prune", "method": "sparsegpt", "sparsity": 0.6},
    "gptq-3bit-g128": {"kind": "quantize", "method": "gptq", "bits": 3, "group_size": 128},
}

# Settings that change the numbers: a resumed run must use the same ones.
RESULT_KEYS = (
    "model",
    "tiny_model",
    "n",
    "seq_len",
    "pool_size",
    "max_per_source",
    "eval_tokens",
    "eval_seq_len",
    "heldout_tokens",
    "packing",
    "self_gen_recipe",
    "wikitext_dir",
    "sources",
    "mc_tasks",
    "mc_examples",
    "mc_format",
    "pool_version",
)
MC_AVERAGE = "average"
MC_FORMAT = f"built-{BUILT_FORMAT}/bigbench-{BIGBENCH_FORMAT}"


@dataclass
class QualityConfig:
    strategies: List[str] = field(default_factory=lambda: list(STRATEGIES))
    methods: List[str] = field(default_factory=lambda: list(METHODS))
    seeds: List[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    n: int = 128
    seq_len: int = 512
    pool_size: int = 2000
    max_per_source: Optional[int] = None
    eval_tokens: int = 32768
    eval_seq_len: int = 512
    heldout_tokens: int = 8192
    packing: str = "fill"
    self_gen_recipe: str = "prefix"
    model: str = "smollm2"
    tiny_model: bool = False
    wikitext_dir: str = str(DEFAULT_WIKITEXT_DIR)
    sources: List[str] = field(default_factory=lambda: list(SOURCES))
    pool_version: int = POOL_VERSION  # the pool's document preparation (not a command-line option)
    # multiple choice: tasks (built from held-out text, or BIG-bench task files), and
    # examples per task (all when fewer; 0: none)
    mc_tasks: List[str] = field(default_factory=lambda: list(MC_TASKS))
    mc_examples: int = 200
    mc_format: str = MC_FORMAT  # the tasks' construction formats (not a command-line option)
    bigbench_dir: Optional[str] = None
    batch_size: int = 8
    device: str = "auto"
    threads: Optional[int] = 2
    out: Optional[str] = None
    note: str = ""
    progress: bool = False
    # Seconds this run may take: no cell is started that the slowest cell so far would
    # not finish in time (None: no limit). Not a result setting.
    time_limit: Optional[float] = None

    def result_settings(self) -> Dict[str, Any]:
        d = asdict(self)
        return {k: d[k] for k in RESULT_KEYS}


def quick_config(**over: Any) -> QualityConfig:
    """A tiny grid that finishes in minutes on two CPU cores."""
    cfg = QualityConfig(
        methods=["wanda-50", "gptq-3bit-g128"],
        seeds=[0, 1],
        n=8,
        seq_len=64,
        pool_size=48,
        max_per_source=200,
        eval_tokens=512,
        eval_seq_len=64,
        heldout_tokens=128,
        mc_examples=4,
    )
    for k, v in over.items():
        setattr(cfg, k, v)
    return cfg


# --------------------------------------------------------------------------
# models and evaluation texts
# --------------------------------------------------------------------------
def tiny_llama(seed: int = 0) -> Tuple[Any, Any]:
    """A randomly initialised 2-layer Llama (hidden 64) with the GPT-2 tokenizer."""
    import torch
    from tokenizers import Tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from ..tokenizer import gpt2_tokenizer_json

    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(gpt2_tokenizer_json()), eos_token="<|endoftext|>")
    tok.pad_token = tok.eos_token
    vocab = len(tok)
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=vocab - 1,
        eos_token_id=vocab - 1,
        pad_token_id=vocab - 1,
    )
    return LlamaForCausalLM(cfg).eval(), tok


def load_base(cfg: QualityConfig) -> Tuple[Any, Any]:
    if cfg.tiny_model:
        return tiny_llama(0)
    from ..models import load_model

    return load_model(cfg.model)


def truncate_to_tokens(tokenizer: Any, text: str, n_tokens: int) -> str:
    """A prefix of ``text`` holding at least ``n_tokens`` tokens (plus a small margin),
    cut at a token boundary, so that evaluation tokenizes only what it uses."""
    chars = max(1024, n_tokens * 8)
    while True:
        piece = text[:chars]
        enc = tokenizer(piece, add_special_tokens=False, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
        if len(offsets) > n_tokens + 16 or chars >= len(text):
            if len(offsets) > n_tokens + 16:
                return piece[: offsets[n_tokens + 16][0]]
            return piece
        chars *= 2


def evaluation_texts(cfg: QualityConfig, tokenizer: Any, heldout: Dict[str, List[str]]) -> Dict[str, str]:
    test = Path(cfg.wikitext_dir) / "test.txt"
    if not test.is_file():
        raise FileNotFoundError(f"WikiText-2 test split not found at {test} (pass --wikitext-dir)")
    out = {"wikitext2-test": truncate_to_tokens(tokenizer, test.read_text(encoding="utf-8"), cfg.eval_tokens)}
    for name, docs in heldout.items():
        if docs:
            out[f"heldout-{name}"] = truncate_to_tokens(tokenizer, "\n\n".join(docs), cfg.heldout_tokens)
    return out


def evaluate(model: Any, tokenizer: Any, texts: Dict[str, str], cfg: QualityConfig) -> Dict[str, float]:
    from ..eval import EvalError, perplexity_stats

    res: Dict[str, float] = {}
    for name, text in texts.items():
        cap = cfg.eval_tokens if name == "wikitext2-test" else cfg.heldout_tokens
        try:
            st = perplexity_stats(
                model,
                tokenizer,
                text,
                seq_len=cfg.eval_seq_len,
                max_windows=max(1, cap // cfg.eval_seq_len),
                batch_size=cfg.batch_size,
            )
        except EvalError as e:
            log.warning("evaluation on %s skipped: %s", name, e)
            continue
        res[name] = st["ppl"]
    return res


def load_mc_tasks(cfg: QualityConfig, heldout: Dict[str, List[str]]) -> Dict[str, List[Dict[str, Any]]]:
    """The first ``mc_examples`` items of each task: tasks built from held-out text
    (WikiText-2 test and ``heldout``, the pool's held-out documents), and BIG-bench
    tasks from their extracted files (shuffled at extraction). Raises
    :class:`~zipcal.experiments.bigbench.BigBenchError` naming the set-up command when a
    BIG-bench task's file is missing."""
    if cfg.mc_examples <= 0 or not cfg.mc_tasks:
        return {}
    from ..eval import read_tasks

    built = [t for t in cfg.mc_tasks if t in MC_TASKS]
    files = task_files([t for t in cfg.mc_tasks if t not in MC_TASKS], cfg.bigbench_dir)
    items = build_tasks(Path(cfg.wikitext_dir) / "test.txt", heldout, cfg.mc_examples, built) if built else {}
    items.update({t: read_tasks(path)[: cfg.mc_examples] for t, path in files.items()})
    return {t: items[t] for t in cfg.mc_tasks}


def _mc_sequences(tokenizer: Any, context: str, choices: Sequence[str]) -> List[Tuple[List[int], int]]:
    """``(token ids of context + choice, context length)`` per choice, built exactly
    as :func:`zipcal.eval.choice_loglikelihoods` builds them."""
    from ..eval import _continuation

    ctx_ids = tokenizer(context, add_special_tokens=False)["input_ids"]
    if not ctx_ids:
        bos = getattr(tokenizer, "bos_token_id", None)
        ctx_ids = [bos if bos is not None else (tokenizer.eos_token_id or 0)]
    out = []
    for choice in choices:
        cont = _continuation(context, choice)
        whole = tokenizer(context + cont, add_special_tokens=False)["input_ids"]
        if whole[: len(ctx_ids)] != ctx_ids or len(whole) <= len(ctx_ids):
            whole = ctx_ids + tokenizer(cont, add_special_tokens=False)["input_ids"]
        out.append((list(whole), len(ctx_ids)))
    return out


def mc_loglikelihoods(
    model: Any, tokenizer: Any, items: Sequence[Dict[str, Any]], max_batch_tokens: int = 4096
) -> List[List[float]]:
    """Log-likelihood of every choice of every item (same numbers as
    :func:`zipcal.eval.choice_loglikelihoods`, up to float tolerance), with the
    sequences of all items sorted by length and batched (right padding, at most
    ``max_batch_tokens`` padded tokens per forward pass) on the model's device."""
    import torch

    from ..eval import _model_device

    seqs = [
        (i, j, ids, n_ctx)
        for i, it in enumerate(items)
        for j, (ids, n_ctx) in enumerate(_mc_sequences(tokenizer, it["context"], it["choices"]))
    ]
    out = [[0.0] * len(it["choices"]) for it in items]
    order = sorted(range(len(seqs)), key=lambda k: len(seqs[k][2]))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    dev = _model_device(model)
    # Only the logits of the choice tokens are needed: skip the vocabulary projection
    # of the context positions where the model supports it (transformers >= 4.50).
    try:
        keep_arg = "logits_to_keep" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):  # pragma: no cover
        keep_arg = False
    pos = 0
    with torch.no_grad():
        while pos < len(order):
            end = pos + 1
            while end < len(order) and (end + 1 - pos) * len(seqs[order[end]][2]) <= max_batch_tokens:
                end += 1
            batch = [seqs[k] for k in order[pos:end]]
            width = max(len(b[2]) for b in batch)
            ids = torch.full((len(batch), width), int(pad), dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for r, (_, _, s, _) in enumerate(batch):
                ids[r, : len(s)] = torch.tensor(s, dtype=torch.long)
                mask[r, : len(s)] = 1
            ids, mask = ids.to(dev), mask.to(dev)
            # logits kept for the last `keep` positions, which cover every row's choice tokens
            keep = max(width - n_ctx + 1 for _, _, _, n_ctx in batch)
            extra = {"logits_to_keep": keep} if keep_arg else {}
            logits = model(input_ids=ids, attention_mask=mask, use_cache=False, **extra).logits
            offset = width - logits.shape[1]
            for r, (i, j, s, n_ctx) in enumerate(batch):
                lp = torch.log_softmax(logits[r, n_ctx - 1 - offset : len(s) - 1 - offset].float(), dim=-1)
                out[i][j] = float(lp.gather(1, ids[r, n_ctx : len(s)].unsqueeze(1)).sum())
            pos = end
    return out


def mc_accuracy(
    model: Any, tokenizer: Any, tasks: Dict[str, List[Dict[str, Any]]], cfg: QualityConfig
) -> Dict[str, Dict[str, float]]:
    """``{"acc": {task: ..., "average": ...}, "acc_norm": {...}}``: zero-shot accuracy
    by total log-likelihood, and by log-likelihood per character (``acc_norm``), as
    :func:`zipcal.eval.multiple_choice` defines them; ``average`` is the unweighted
    mean over tasks."""
    from ..eval import _continuation

    if not tasks:
        return {}
    model.eval()
    acc: Dict[str, float] = {}
    acc_norm: Dict[str, float] = {}
    budget = max(cfg.batch_size * cfg.eval_seq_len, 256)
    for name, items in tasks.items():
        lls = mc_loglikelihoods(model, tokenizer, items, max_batch_tokens=budget)
        hit = hit_norm = 0
        for it, ll in zip(items, lls):
            norm = [v / max(len(_continuation(it["context"], c)), 1) for v, c in zip(ll, it["choices"])]
            hit += int(max(range(len(ll)), key=lambda k: ll[k]) == it["label"])
            hit_norm += int(max(range(len(norm)), key=lambda k: norm[k]) == it["label"])
        acc[name] = hit / len(items) if items else float("nan")
        acc_norm[name] = hit_norm / len(items) if items else float("nan")
    acc[MC_AVERAGE] = sum(acc.values()) / len(acc)
    acc_norm[MC_AVERAGE] = sum(acc_norm.values()) / len(acc_norm)
    return {"acc": acc, "acc_norm": acc_norm}


def compress(model: Any, tokenizer: Any, calib: Dict[str, Any], method: str, cfg: QualityConfig) -> Dict[str, Any]:
    from ..compress import prune, quantize

    spec = dict(METHODS[method])
    kind = spec.pop("kind")
    fn = prune if kind == "prune" else quantize
    rep = fn(model, calib, tokenizer=tokenizer, device=cfg.device, batch_size=cfg.batch_size, progress=False, **spec)
    if kind == "prune":
        return {"overall_sparsity": rep["overall_sparsity"]}
    return {"bits": rep["bits"], "group_size": rep["group_size"]}


# --------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------
def default_out() -> str:
    return str(Path("benches") / "results" / f"quality-{_dt.date.today().isoformat()}")


def hardware(device: Any) -> str:
    """What a cell ran on: the GPU's name, or the CPU's model and thread count."""
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    name = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"cpu: {name or platform.machine()}, {torch.get_num_threads()} threads"


def model_device(model: Any) -> Any:
    return next(model.parameters()).device


def _cell_key(strategy: str, method: str, seed: int) -> str:
    return f"{strategy}|{method}|{seed}"


def _settings_diff(theirs: Dict[str, Any], mine: Dict[str, Any]) -> Dict[str, Any]:
    """``{setting: (theirs, mine)}`` for every setting where two results differ."""
    return {k: (theirs.get(k), mine.get(k)) for k in set(mine) | set(theirs) if theirs.get(k) != mine.get(k)}


def _missing(cfg: QualityConfig, data: Dict[str, Any]) -> List[str]:
    """Keys of the configured cells that ``data`` does not hold yet."""
    keys = (_cell_key(s, m, sd) for s in cfg.strategies for m in cfg.methods for sd in cfg.seeds)
    return [k for k in keys if k not in data["cells"]]


def _recorded_config(cfg: QualityConfig) -> Dict[str, Any]:
    """The configuration a results file records (not the per-run switches)."""
    return {k: v for k, v in asdict(cfg).items() if k not in ("progress", "time_limit")}


def _load_results(path: Path, cfg: QualityConfig) -> Dict[str, Any]:
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        stored = data.get("settings", {})
        mine = json.loads(json.dumps(cfg.result_settings()))
        diff = _settings_diff({k: stored.get(k) for k in mine}, mine)
        if diff:
            raise ValueError(
                f"{path} was computed with different settings {diff} (stored, now); use another --out to start afresh"
            )
        return data
    return {"settings": cfg.result_settings(), "cells": {}, "selections": {}, "dense": None}


def _save(out: Path, data: Dict[str, Any]) -> None:
    with atomic_path(out / "results.json") as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True, default=float)


def _adopt(data: Dict[str, Any], other: Dict[str, Any], where: str) -> int:
    """Copy into ``data`` the cells and selections of ``other`` (results of the same
    settings) that ``data`` lacks; the number of cells copied. A cell both hold keeps
    ``data``'s version."""
    if other.get("settings") != data.get("settings"):
        diff = _settings_diff(other.get("settings", {}), data.get("settings", {}))
        raise ValueError(f"{where} was computed with different settings {diff} (there, here)")
    docs, theirs_docs = (data.get("pool") or {}).get("documents"), (other.get("pool") or {}).get("documents")
    if docs is not None and theirs_docs is not None and docs != theirs_docs:
        raise ValueError(
            f"{where} drew its pools from other source documents ({theirs_docs} there, {docs} here): "
            "a source was missing on one machine"
        )
    added = 0
    for part in ("cells", "selections"):
        mine_part = data.setdefault(part, {})
        for key, value in (other.get(part) or {}).items():
            if key not in mine_part:
                mine_part[key] = value
                added += part == "cells"
    if data.get("dense") is None and other.get("dense") is not None:
        data["dense"] = other["dense"]
    return added


def _commit(out: Path, data: Dict[str, Any], cfg: "QualityConfig") -> None:
    """Save ``data`` with the summary and report, first adopting cells that another
    run (on this machine, or merged from another) wrote to the same file meanwhile."""
    path = out / "results.json"
    if path.is_file():
        try:
            disk = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # a file being replaced: the next save adopts it
            disk = None
        if disk is not None and disk.get("settings") == data.get("settings"):
            n = _adopt(data, disk, str(path))
            if n:
                log.info("adopted %d cells written to %s by another run", n, path)
    data["summary"] = summarize(data, cfg)
    _save(out, data)
    write_markdown(out / "report.md", data, cfg)


def _with_recorded_config(cfg: "QualityConfig", stored: Path) -> "QualityConfig":
    """``cfg`` with the configuration recorded in ``stored`` (strategies, methods,
    seeds, settings, note), when that file exists; ``out`` stays ``cfg``'s."""
    if not stored.is_file():
        return cfg
    recorded = json.loads(stored.read_text(encoding="utf-8")).get("config") or {}
    names = {f.name for f in dataclasses.fields(QualityConfig)}
    return dataclasses.replace(cfg, **{k: v for k, v in recorded.items() if k in names and k != "out"})


def merge_results(cfg: "QualityConfig", paths: Sequence[str]) -> Dict[str, Any]:
    """Merge the cells of other runs' ``results.json`` (same settings; for example a
    GPU run of ``benches/gpu_grid.sh``) into ``cfg.out``; each cell keeps the hardware
    it ran on, and cells already there are kept. When ``cfg.out`` holds results, their
    recorded configuration (strategies, methods, seeds, settings) is used."""
    out = Path(cfg.out or default_out())
    stored = out / "results.json"
    cfg = _with_recorded_config(cfg, stored)
    data = _load_results(stored, cfg)
    for p in paths:
        other = json.loads(Path(p).read_text(encoding="utf-8"))
        n = _adopt(data, other, p)
        log.info("merged %d cells from %s", n, p)
        print(f"merged {n} cells from {p}")
    data.setdefault("config", _recorded_config(cfg))
    out.mkdir(parents=True, exist_ok=True)
    _commit(out, data, cfg)
    return data


def strategy_options(strategy: str, model: Any, tokenizer: Any, cfg: QualityConfig) -> Dict[str, Any]:
    if strategy not in MODEL_STRATEGIES:
        return {}
    opts: Dict[str, Any] = dict(
        model=model,
        model_tokenizer=tokenizer,
        max_length=cfg.seq_len,
        batch_size=cfg.batch_size,
        device=cfg.device,
        progress=cfg.progress,
    )
    if strategy == "self-gen":
        opts["recipe"] = cfg.self_gen_recipe
        opts["gen_length"] = cfg.seq_len
    return opts


def seed_pool(texts: Sequence[str], labels: Sequence[str], cfg: QualityConfig, seed: int, tokenizer: Any):
    """The candidate pool of one seed: ``pool_size`` documents drawn without replacement."""
    from ..pool import load_pool

    k = min(cfg.pool_size, len(texts))
    idx = np.sort(np.random.default_rng(1_000_003 + seed).choice(len(texts), size=k, replace=False))
    pool = load_pool([texts[i] for i in idx], tokenizer=tokenizer, seq_len=cfg.seq_len, min_tokens=min(16, cfg.seq_len))
    return pool, [labels[i] for i in idx]


def run_quality(cfg: QualityConfig) -> Dict[str, Any]:
    import torch

    from ..selection import select

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    for m in cfg.methods:
        if m not in METHODS:
            raise ValueError(f"unknown method {m!r} (choose from {', '.join(METHODS)})")
    out = Path(cfg.out or default_out())
    out.mkdir(parents=True, exist_ok=True)
    data = _load_results(out / "results.json", cfg)
    data["config"] = _recorded_config(cfg)
    data["environment"] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }
    mixed = build_pool(cfg.wikitext_dir, sources=cfg.sources, max_per_source=cfg.max_per_source)
    mc_tasks = load_mc_tasks(cfg, mixed.heldout)  # fails early, naming the set-up command, when files are missing
    data["mc"] = {
        t: {"examples": len(items), "chance": sum(1.0 / len(it["choices"]) for it in items) / max(len(items), 1)}
        for t, items in mc_tasks.items()
    }
    data["pool"] = {
        "documents": mixed.counts(),
        "skipped_sources": mixed.skipped,
        "heldout_documents": {k: len(v) for k, v in mixed.heldout.items()},
    }
    base, tok = load_base(cfg)
    base.eval()
    texts = evaluation_texts(cfg, tok, mixed.heldout)
    if data.get("dense") is None:
        t0 = time.perf_counter()
        dense: Dict[str, Any] = {"ppl": evaluate(base, tok, texts, cfg)}
        t1 = time.perf_counter()
        dense.update(mc_accuracy(base, tok, mc_tasks, cfg))
        dense.update(eval_seconds=time.perf_counter() - t0, mc_seconds=time.perf_counter() - t1)
        data["dense"] = dense
        _save(out, data)
        log.info("dense model: %s; accuracy %s", dense["ppl"], dense.get("acc"))
    total = len(cfg.strategies) * len(cfg.methods) * len(cfg.seeds)
    done = total - len(_missing(cfg, data))
    log.info("quality grid: %d cells, %d already done", total, done)
    started = time.perf_counter()
    slowest = 0.0  # seconds of the slowest cell (selection included) in this run

    def out_of_time() -> bool:
        if cfg.time_limit is None:
            return False
        return time.perf_counter() - started + slowest > cfg.time_limit

    for seed in cfg.seeds:
        pool: Any = None
        labels: List[str] = []
        for strategy in cfg.strategies:
            todo = [m for m in cfg.methods if _cell_key(strategy, m, seed) not in data["cells"]]
            if not todo:
                continue
            if out_of_time():
                break
            since = time.perf_counter()  # this cell's time includes the selection
            if pool is None:
                pool, labels = seed_pool(mixed.texts, mixed.labels, cfg, seed, tok)
            sel = select(pool, cfg.n, strategy=strategy, seed=seed, **strategy_options(strategy, base, tok, cfg))
            calib = sel.to_input_ids(cfg.seq_len, policy=cfg.packing, return_tensors="pt")
            mix: Dict[str, int] = {}
            if not sel.synthetic:
                for r in sel.indices:
                    mix[labels[int(r)]] = mix.get(labels[int(r)], 0) + 1
            data["selections"][f"{strategy}|{seed}"] = {
                "strategy": strategy,
                "seed": seed,
                "select_seconds": float(sel.info.get("select_seconds", sel.seconds)),
                "tokens_through_model": int(sel.info.get("tokens_through_model", 0)),
                "device": sel.info.get("device", "cpu"),
                "calibration_tokens": int(calib["attention_mask"].sum()),
                "pool_candidates": len(pool),
                "types_covered": int(sel.stats["types_covered"]),
                "source_mix": mix,
            }
            for method in todo:
                if out_of_time():
                    break
                t0 = time.perf_counter()
                model = copy.deepcopy(base)
                crep = compress(model, tok, calib, method, cfg)
                t1 = time.perf_counter()
                ppl = evaluate(model, tok, texts, cfg)
                t2 = time.perf_counter()
                mc = mc_accuracy(model, tok, mc_tasks, cfg)
                del model
                cell = {
                    "strategy": strategy,
                    "method": method,
                    "seed": seed,
                    "ppl": ppl,
                    "compression": crep,
                    "hardware": hardware(model_device(base)),
                    "compress_seconds": t1 - t0,
                    "eval_seconds": time.perf_counter() - t1,
                    "mc_seconds": time.perf_counter() - t2,
                    **mc,
                }
                bad = [k for k, v in ppl.items() if not math.isfinite(v)]
                if bad:
                    log.warning("non-finite perplexity for %s on %s", _cell_key(strategy, method, seed), bad)
                data["cells"][_cell_key(strategy, method, seed)] = cell
                _commit(out, data, cfg)
                slowest = max(slowest, time.perf_counter() - since)
                since = time.perf_counter()
                done += 1
                log.info(
                    "[%d/%d] %s: %s; accuracy %s",
                    done,
                    total,
                    _cell_key(strategy, method, seed),
                    {k: round(v, 3) for k, v in ppl.items()},
                    {k: round(v, 3) for k, v in mc.get("acc", {}).items()},
                )
    left = len(_missing(cfg, data))
    if left and cfg.time_limit is not None:
        log.info("time limit of %.0f s reached: %d cells left for the next run", cfg.time_limit, left)
    _commit(out, data, cfg)
    try:
        plot_quality_vs_time(out / "quality_vs_time.png", data)
    except ImportError:  # pragma: no cover
        log.warning("matplotlib not installed: no plot")
    return data


# --------------------------------------------------------------------------
# summaries
# --------------------------------------------------------------------------
def rebuild_report(cfg: QualityConfig) -> Dict[str, Any]:
    """Regenerate report.md and the plot from ``results.json`` alone (e.g. of a run
    still in progress), without loading a model, under the recorded configuration."""
    out = Path(cfg.out or default_out())
    cfg = _with_recorded_config(cfg, out / "results.json")
    data = _load_results(out / "results.json", cfg)
    if "pool" not in data or "environment" not in data:
        raise ValueError(f"{out / 'results.json'} holds no completed setup yet")
    data["summary"] = summarize(data, cfg)
    write_markdown(out / "report.md", data, cfg)
    try:
        plot_quality_vs_time(out / "quality_vs_time.png", data)
    except ImportError:  # pragma: no cover
        pass
    return data


def _metric_entry(
    cells: Dict[str, Any], cfg: QualityConfig, strategy: str, method: str, kind: str, metric: str
) -> Dict[str, Any]:
    """Mean ± std over seeds of ``cell[kind][metric]``, and (for strategies other
    than random) the paired comparison with random on the same seeds."""

    def value(strat: str, sd: int) -> Optional[float]:
        cell = cells.get(_cell_key(strat, method, sd))
        return None if cell is None else (cell.get(kind) or {}).get(metric)

    vals: Dict[int, float] = {sd: v for sd in cfg.seeds if (v := value(strategy, sd)) is not None}
    entry: Dict[str, Any] = dict(mean_std(list(vals.values())))
    if strategy != "random":
        ref: Dict[int, float] = {sd: v for sd in vals if (v := value("random", sd)) is not None}
        common = [sd for sd in vals if sd in ref]
        entry["vs_random"] = paired_test([vals[s] for s in common], [ref[s] for s in common])
    return entry


def summarize(data: Dict[str, Any], cfg: QualityConfig) -> Dict[str, Any]:
    cells = data["cells"]
    metrics = sorted({k for c in cells.values() for k in c["ppl"]}, key=lambda k: (k != "wikitext2-test", k))
    seen_acc = {k for c in cells.values() for k in (c.get("acc") or {})}
    acc_metrics = [t for t in list(cfg.mc_tasks) + [MC_AVERAGE] if t in seen_acc]
    table: Dict[str, Any] = {}
    acc_table: Dict[str, Any] = {}
    for method in cfg.methods:
        for strategy in cfg.strategies:
            table[f"{strategy}|{method}"] = {m: _metric_entry(cells, cfg, strategy, method, "ppl", m) for m in metrics}
            acc_table[f"{strategy}|{method}"] = {
                m: _metric_entry(cells, cfg, strategy, method, "acc", m) for m in acc_metrics
            }
    cost: Dict[str, Any] = {}
    for strategy in cfg.strategies:
        recs = [r for r in data["selections"].values() if r["strategy"] == strategy]
        if recs:
            cost[strategy] = {
                "select_seconds": mean_std([r["select_seconds"] for r in recs]),
                "tokens_through_model": mean_std([r["tokens_through_model"] for r in recs]),
                "calibration_tokens": mean_std([r["calibration_tokens"] for r in recs]),
                "device": recs[0]["device"],
            }
    z = cost.get("zipcal", {}).get("select_seconds", {}).get("mean")
    for _s, c in cost.items():
        c["time_ratio_vs_zipcal"] = (c["select_seconds"]["mean"] / z) if z else None
    return {
        "metrics": metrics,
        "table": table,
        "acc_metrics": acc_metrics,
        "acc_table": acc_table,
        "selection_cost": cost,
        "wins": wins_vs_random(table, acc_table, cfg),
    }


def wins_vs_random(
    table: Dict[str, Any], acc_table: Dict[str, Any], cfg: QualityConfig, alpha: float = 0.05
) -> Dict[str, Any]:
    """Per strategy, over the (method × metric) cells that have paired seeds with
    random: how many it wins (lower perplexity, higher accuracy on average over the
    seeds), how many it loses, and how many of each at paired t-test ``p < alpha``.
    The metrics are every perplexity and the accuracy average (the per-task
    accuracies make that average, and are not counted twice)."""
    out: Dict[str, Any] = {}
    for strategy in cfg.strategies:
        if strategy == "random":
            continue
        rec = {"cells": 0, "better": 0, "worse": 0, "significantly_better": 0, "significantly_worse": 0}
        for method in cfg.methods:
            key = f"{strategy}|{method}"
            entries = [(e, -1.0) for e in table.get(key, {}).values()]
            avg = acc_table.get(key, {}).get(MC_AVERAGE)
            if avg is not None:
                entries.append((avg, 1.0))
            for entry, sign in entries:
                vr = entry.get("vs_random") or {}
                diff = vr.get("mean_diff")
                if diff is None or not vr.get("n"):
                    continue
                rec["cells"] += 1
                gain = sign * diff
                significant = vr.get("p_t") is not None and vr["p_t"] < alpha
                if gain > 0:
                    rec["better"] += 1
                    rec["significantly_better"] += int(significant)
                elif gain < 0:
                    rec["worse"] += 1
                    rec["significantly_worse"] += int(significant)
        out[strategy] = rec
    return out


def _pm(e: Optional[Dict[str, Any]], digits: int = 2) -> str:
    if not e or e.get("mean") is None:
        return "–"
    return f"{e['mean']:.{digits}f} ± {e['std']:.{digits}f}"


def _p(v: Optional[float]) -> str:
    return "–" if v is None else f"{v:.3g}"


def reductions(cfg: QualityConfig) -> List[str]:
    """How this configuration differs from the full grid."""
    full = QualityConfig()
    out = []
    for k in (
        "strategies",
        "methods",
        "seeds",
        "n",
        "seq_len",
        "pool_size",
        "max_per_source",
        "eval_tokens",
        "eval_seq_len",
        "heldout_tokens",
        "mc_tasks",
        "mc_examples",
        "model",
        "tiny_model",
    ):
        a, b = getattr(cfg, k), getattr(full, k)
        if a != b:
            out.append(f"`{k}`: {a} (default: {b})")
    return out


def write_markdown(path: Path, data: Dict[str, Any], cfg: QualityConfig) -> None:
    s = data["summary"]
    lines = [
        "# Calibration data quality: strategy × compression method",
        "",
        f"Model: {'tiny random Llama (2 layers, hidden 64)' if cfg.tiny_model else cfg.model}; "
        f"budget n = {cfg.n} samples × seq_len = {cfg.seq_len} tokens (packing: {cfg.packing}); "
        f"per seed a pool of {cfg.pool_size} documents drawn from the mixed corpus; seeds {cfg.seeds}.",
        f"Evaluation: WikiText-2 test perplexity on the first {cfg.eval_tokens} tokens "
        f"({cfg.eval_seq_len}-token windows); held-out perplexity per pool source on {cfg.heldout_tokens} tokens"
        + (f"; zero-shot multiple-choice accuracy ({_mc_description(data)})." if data.get("mc") else "."),
        f"Pool documents: {dict(_ordered(data['pool']['documents']))}; "
        f"skipped sources: {data['pool']['skipped_sources'] or 'none'}.",
        f"Environment: {dict(_ordered(data['environment']))}.",
        "",
    ]
    red = reductions(cfg)
    if red:
        lines += ["Differs from the default grid:", ""] + [f"- {r}" for r in red] + [""]
    if cfg.note:
        lines += [cfg.note, ""]
    total = len(cfg.strategies) * len(cfg.methods) * len(cfg.seeds)
    lines += [f"Cells computed: {total - len(_missing(cfg, data))} / {total}.", ""]
    by_hw: Dict[str, int] = {}
    for c in data["cells"].values():
        hw = c.get("hardware") or "not recorded"
        by_hw[hw] = by_hw.get(hw, 0) + 1
    if by_hw:
        lines += ["Cells by hardware: " + "; ".join(f"{k}: {v}" for k, v in sorted(by_hw.items())) + ".", ""]
    dense = data.get("dense") or {}
    if dense:
        lines += [
            "Dense (uncompressed) model: "
            + ", ".join(f"{k} {v:.2f}" for k, v in _ordered(dense["ppl"], ["wikitext2-test"]))
            + (
                "; accuracy " + ", ".join(f"{k} {_pct(v)}" for k, v in _ordered(dense["acc"], [MC_AVERAGE]))
                if dense.get("acc")
                else ""
            ),
            "",
        ]
    metrics = s["metrics"]
    acc_metrics = s.get("acc_metrics") or []
    for method in cfg.methods:
        lines += [
            f"## {method}",
            "",
            "Perplexity mean ± std over seeds (lower is better); Δ = paired difference vs random "
            "(same seed), p-values of a paired t-test and an exact sign test.",
            "",
        ]
        head = ["strategy", "WikiText-2 ppl", "Δ vs random", "p (t)", "p (sign)"] + [
            m for m in metrics if m != "wikitext2-test"
        ]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for strategy in cfg.strategies:
            row = s["table"].get(f"{strategy}|{method}", {})
            w = row.get("wikitext2-test")
            vr = (w or {}).get("vs_random") or {}
            cells = [
                strategy,
                f"{_pm(w)} (n={w['n'] if w else 0})",
                "–" if vr.get("mean_diff") is None else f"{vr['mean_diff']:+.2f} ± {vr['std_diff']:.2f}",
                _p(vr.get("p_t")),
                _p(vr.get("p_sign")),
            ] + [_pm(row.get(m)) for m in metrics if m != "wikitext2-test"]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        if acc_metrics:
            lines += _accuracy_table(s["acc_table"], method, cfg, acc_metrics, dense.get("acc") or {})
    wins = s.get("wins") or {}
    if any(w["cells"] for w in wins.values()):
        lines += [
            "## Against random, cell by cell",
            "",
            "Per strategy, the (method × metric) cells with paired seeds, metrics being every perplexity "
            "above and the accuracy average: how many it wins on the mean paired difference (lower "
            "perplexity, higher accuracy), how many it loses, and in brackets how many of those at "
            "paired t-test p < 0.05.",
            "",
            "| strategy | cells | better than random | worse than random |",
            "|---|---|---|---|",
        ]
        for strategy, w in wins.items():
            lines.append(
                f"| {strategy} | {w['cells']} | {w['better']} ({w['significantly_better']}) | "
                f"{w['worse']} ({w['significantly_worse']}) |"
            )
        lines.append("")
    lines += [
        "## Selection cost",
        "",
        "Wall-clock seconds of the selection step on the per-seed pool (model already loaded; pool "
        "tokenization excluded), tokens forwarded through or generated by the model, ratio to ZipCal.",
        "",
        "| strategy | select seconds | tokens through model | device | ratio vs zipcal |",
        "|---|---|---|---|---|",
    ]
    for strategy, c in s["selection_cost"].items():
        r = c.get("time_ratio_vs_zipcal")
        lines.append(
            f"| {strategy} | {_pm(c['select_seconds'], 4)} | {c['tokens_through_model']['mean']:.0f} | {c['device']} | "
            f"{'–' if r is None else f'{r:.1f}x'} |"
        )
    lines.append("")
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def _pct(v: Optional[float]) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def _mc_description(data: Dict[str, Any]) -> str:
    return ", ".join(f"{t}: {m['examples']} examples, chance {_pct(m['chance'])}%" for t, m in _ordered(data["mc"]))


def _ordered(d: Dict[str, Any], first: Sequence[str] = ()) -> List[Tuple[str, Any]]:
    """``d``'s items in an order that does not depend on how ``d`` was built (a report
    rebuilt from results.json reads the same as the one written during the run):
    ``first`` in its order, then the rest sorted."""
    return [(k, d[k]) for k in first if k in d] + sorted((k, v) for k, v in d.items() if k not in first)


def _accuracy_table(
    acc_table: Dict[str, Any], method: str, cfg: QualityConfig, acc_metrics: List[str], dense: Dict[str, float]
) -> List[str]:
    """Markdown rows: accuracy (%) mean ± std over seeds per task and their average;
    paired difference vs random (same seed) of the average with p-values, and per task."""
    tasks = [m for m in acc_metrics if m != MC_AVERAGE]
    lines = [
        "Zero-shot multiple-choice accuracy (%), mean ± std over seeds (higher is better); "
        "Δ = paired difference vs random (same seed) in points, for the task average with p-values "
        "(paired t-test, exact sign test), per task in brackets.",
        "",
    ]
    head = ["strategy", "average", "Δ vs random", "p (t)", "p (sign)"] + tasks
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def pm(e: Optional[Dict[str, Any]]) -> str:
        if not e or e.get("mean") is None:
            return "–"
        return f"{100 * e['mean']:.1f} ± {100 * e['std']:.1f}"

    def delta(e: Optional[Dict[str, Any]]) -> str:
        vr = (e or {}).get("vs_random") or {}
        if vr.get("mean_diff") is None:
            return "–"
        return f"{100 * vr['mean_diff']:+.1f} ± {100 * vr['std_diff']:.1f}"

    for strategy in cfg.strategies:
        row = acc_table.get(f"{strategy}|{method}", {})
        avg = row.get(MC_AVERAGE)
        vr = (avg or {}).get("vs_random") or {}
        cells = [
            strategy,
            f"{pm(avg)} (n={avg['n'] if avg else 0})",
            delta(avg),
            _p(vr.get("p_t")),
            _p(vr.get("p_sign")),
        ]
        for t in tasks:
            d = delta(row.get(t))
            cells.append(pm(row.get(t)) + ("" if d == "–" else f" ({d.split(' ±')[0]})"))
        lines.append("| " + " | ".join(cells) + " |")
    if dense:
        lines.append(
            "| dense (uncompressed) | "
            + " | ".join([_pct(dense.get(MC_AVERAGE)), "", "", ""] + [_pct(dense.get(t)) for t in tasks])
            + " |"
        )
    lines.append("")
    return lines


def plot_quality_vs_time(path: Path, data: Dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = data["summary"]
    cost = s["selection_cost"]
    methods = sorted(
        {k.split("|")[1] for k, row in s["table"].items() if (row.get("wikitext2-test") or {}).get("mean") is not None}
    )
    if not methods:
        return
    fig, axes = plt.subplots(1, len(methods), figsize=(5 * len(methods), 4), squeeze=False)
    for ax, method in zip(axes[0], methods):
        for key, row in s["table"].items():
            strategy, m = key.split("|")
            w = row.get("wikitext2-test")
            if m != method or not w or w.get("mean") is None or strategy not in cost:
                continue
            x = max(cost[strategy]["select_seconds"]["mean"], 1e-4)
            ax.errorbar([x], [w["mean"]], yerr=[w["std"] or 0.0], fmt="o", capsize=3)
            ax.annotate(strategy, (x, w["mean"]), textcoords="offset points", xytext=(5, 5), fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("selection time (s, log)")
        ax.set_ylabel("WikiText-2 perplexity")
        ax.set_title(method)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------
def _csv(s: str) -> List[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strategies", type=_csv, default=None, help=f"comma list (default: {','.join(STRATEGIES)})")
    p.add_argument("--methods", type=_csv, default=None, help=f"comma list (default: {','.join(METHODS)})")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds 0..k-1 (default 5)")
    p.add_argument("-n", type=int, default=None, help="calibration samples (default 128)")
    p.add_argument("--seq-len", type=int, default=None, help="tokens per calibration sample (default 512)")
    p.add_argument("--pool-size", type=int, default=None, help="documents in each seed's candidate pool (default 2000)")
    p.add_argument("--max-per-source", type=int, default=None, help="cap on pool documents per source")
    p.add_argument("--eval-tokens", type=int, default=None, help="WikiText-2 test tokens evaluated (default 32768)")
    p.add_argument("--eval-seq-len", type=int, default=None, help="evaluation window (default 512)")
    p.add_argument("--heldout-tokens", type=int, default=None, help="held-out tokens per pool source (default 8192)")
    p.add_argument(
        "--mc-examples",
        type=int,
        default=None,
        help="multiple-choice examples per task (default 200, all when fewer; 0: no accuracy)",
    )
    p.add_argument(
        "--mc-tasks",
        type=_csv,
        default=None,
        help=f"tasks built from held-out text ({','.join(MC_TASKS)}: the default) and/or BIG-bench "
        "tasks extracted with `python -m zipcal.experiments.bigbench extract`",
    )
    p.add_argument(
        "--bigbench-dir",
        default=None,
        help="folder of the extracted task files (default $ZIPCAL_BIGBENCH_DIR or ~/.cache/zipcal/bigbench)",
    )
    p.add_argument("--packing", choices=["fill", "truncate", "random-window", "concat-chunk"], default=None)
    p.add_argument("--self-gen-recipe", choices=["prefix", "bos"], default=None)
    p.add_argument("--model", default=None, help="'smollm2' (default, offline) or a local model folder")
    p.add_argument("--tiny-model", action="store_true", help="a tiny random Llama instead of a real model")
    p.add_argument("--wikitext-dir", default=None, help="folder with WikiText-2 valid.txt and test.txt")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default 2)")
    p.add_argument("--out", default=None, help="output folder (default benches/results/quality-<date>)")
    p.add_argument("--note", default=None, help="a sentence added to the report")
    p.add_argument("--quick", action="store_true", help="a tiny grid that finishes in minutes")
    p.add_argument("--progress", action="store_true", help="progress bars of the model-based strategies")
    p.add_argument("--report-only", action="store_true", help="only rebuild report.md and the plot from results.json")
    p.add_argument(
        "--time-limit",
        type=float,
        default=None,
        metavar="SECONDS",
        help="start no cell that the slowest so far would not finish within this run's SECONDS (resume later)",
    )
    p.add_argument(
        "--merge",
        nargs="+",
        metavar="RESULTS_JSON",
        default=None,
        help="merge the cells of other runs' results.json (same settings, e.g. from a GPU) into --out and rebuild "
        "the report; each cell keeps its hardware",
    )


def config_from_args(args: argparse.Namespace) -> QualityConfig:
    cfg = quick_config() if args.quick else QualityConfig()
    mapping = {
        "strategies": args.strategies,
        "methods": args.methods,
        "n": args.n,
        "seq_len": args.seq_len,
        "pool_size": args.pool_size,
        "max_per_source": args.max_per_source,
        "eval_tokens": args.eval_tokens,
        "eval_seq_len": args.eval_seq_len,
        "heldout_tokens": args.heldout_tokens,
        "packing": args.packing,
        "mc_examples": args.mc_examples,
        "mc_tasks": args.mc_tasks,
        "bigbench_dir": args.bigbench_dir,
        "self_gen_recipe": args.self_gen_recipe,
        "model": args.model,
        "wikitext_dir": args.wikitext_dir,
        "batch_size": args.batch_size,
        "device": args.device,
        "threads": args.threads,
        "out": args.out,
        "note": args.note,
        "time_limit": args.time_limit,
    }
    for k, v in mapping.items():
        if v is not None:
            setattr(cfg, k, v)
    if args.seeds is not None:
        cfg.seeds = list(range(args.seeds))
    if args.tiny_model:
        cfg.tiny_model = True
    cfg.progress = bool(args.progress)
    for s in cfg.strategies:
        from ..strategies import get

        get(s)
    return cfg


def cmd_quality(args: argparse.Namespace) -> int:
    import sys

    cfg = config_from_args(args)
    if args.merge:
        data = merge_results(cfg, args.merge)
    else:
        data = rebuild_report(cfg) if args.report_only else run_quality(cfg)
    out = Path(cfg.out or default_out())
    print(f"wrote {out / 'results.json'}, {out / 'report.md'}, {out / 'quality_vs_time.png'}", file=sys.stdout)
    return 0 if data else 1

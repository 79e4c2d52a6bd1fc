"""Zero-shot accuracy tasks built from held-out text, so that any install can score them.

Two multiple-choice tasks in the format of :func:`zipcal.eval.read_tasks`
(``{"context", "choices", "label", "id", "source"}``), scored by log-likelihood in
the cloze form (each choice is scored as the continuation of the context):

* ``heldout-lastword`` (LAMBADA-style): a passage cut before its last word; the
  choices are that word and three other words of the same passage (of at least
  three letters), so that the passage, not word frequency alone, tells them apart.
* ``heldout-continuation``: the first sentences of a passage; the choices are its
  true next sentence and three sentences from the same position of other passages
  of the same source, of similar length.

Passages come from text no pool ever holds: the WikiText-2 *test* split (its
paragraphs, with WikiText's tokenization of punctuation undone) and the held-out
documents of the pool's prose sources (:func:`zipcal.experiments.mixed_corpus.build_pool`).
Everything is deterministic: passages, distractors and the order of the choices
are drawn with seeds derived from the task name and the item. A few hundred items
of each task are built (``examples``).
"""

from __future__ import annotations

import hashlib
import random
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

TASKS = ("heldout-lastword", "heldout-continuation")
# Bump when the items of a task change (results of another version are not mixed).
FORMAT_VERSION = 1
PROSE_SOURCES = ("wikipedia", "lee-news", "python-docs")

_DETOK = [
    (re.compile(r" @(.)@ "), r"\1"),
    (re.compile(r" ([.,;:!?%)\]}])"), r"\1"),
    (re.compile(r"([(\[{$]) "), r"\1"),
    (re.compile(r" (n't|'s|'re|'ve|'m|'ll|'d)\b"), r"\1"),
    (re.compile(r'" ([^"]*?) "'), r'"\1"'),
    (re.compile(r"\s+"), " "),
]
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
_WORD = re.compile(r"[A-Za-z]{3,}")


def detokenize(line: str) -> str:
    """Undo WikiText's spacing around punctuation (``word , word @-@ word``)."""
    for pat, rep in _DETOK:
        line = pat.sub(rep, line)
    return line.strip()


def sentences(text: str) -> List[str]:
    return [s.strip() for s in _SENTENCE_END.split(" ".join(text.split())) if s.strip()]


def _rng(*parts: Any) -> random.Random:
    h = hashlib.sha256("\0".join(str(p) for p in parts).encode("utf-8")).digest()
    return random.Random(int.from_bytes(h[:8], "little"))


def wikitext_passages(test_path: "str | Path", min_words: int = 30) -> List[str]:
    """Passages of WikiText-2 test, detokenized: the runs of consecutive sentences of a
    paragraph that hold no ``<unk>`` (most paragraphs hold one somewhere), headings
    dropped."""
    out = []
    for line in Path(test_path).read_text(encoding="utf-8").split("\n"):
        if not line.strip() or line.strip().startswith("="):
            continue
        run: List[str] = []
        for sent in sentences(detokenize(line)) + ["<unk>"]:
            if "<unk>" in sent:
                if len(" ".join(run).split()) >= min_words:
                    out.append(" ".join(run))
                run = []
            else:
                run.append(sent)
    return out


def _window(sents: List[str], max_words: int) -> List[str]:
    """The longest run of the first sentences that stays within ``max_words``."""
    out: List[str] = []
    words = 0
    for s in sents:
        words += len(s.split())
        if out and words > max_words:
            break
        out.append(s)
    return out


def lastword_items(passages: Sequence[Sequence[str]], k: int, max_words: int = 120) -> List[Dict[str, Any]]:
    """LAMBADA-style items from ``passages`` (``(source, text)`` pairs)."""
    items: List[Dict[str, Any]] = []
    for idx, (source, text) in enumerate(passages):
        kept = " ".join(_window(sentences(text), max_words))
        body = kept.rstrip(" .!?\"')")
        m = list(_WORD.finditer(body))
        if len(m) < 20 or m[-1].end() != len(body) or body[m[-1].start() - 1] != " ":
            continue  # the passage must end on a whole word ("tax-exempt" does not)
        target = m[-1].group(0)
        context = body[: m[-1].start()].rstrip()
        pool = sorted({w.group(0) for w in m[:-1]} - {target}, key=str.lower)
        pool = [w for w in pool if w.lower() != target.lower()]
        if len(pool) < 3 or not context:
            continue
        rng = _rng("lastword", idx, target)
        choices = rng.sample(pool, 3) + [target]
        rng.shuffle(choices)
        items.append(
            {
                "context": context,
                "choices": choices,
                "label": choices.index(target),
                "id": f"lastword-{idx}",
                "source": source,
            }
        )
    return _sample(items, k, "lastword")


def continuation_items(passages: Sequence[Sequence[str]], k: int, max_words: int = 120) -> List[Dict[str, Any]]:
    """True next sentence against three from other passages of the same source."""
    split = []
    for idx, (source, text) in enumerate(passages):
        sents = sentences(text)
        if len(sents) < 2:
            continue
        head = _window(sents[:-1], max_words)
        nxt = sents[len(head)]
        if 4 <= len(nxt.split()) <= 60:
            split.append((idx, source, head, nxt))
    by_source: Dict[str, List[int]] = {}
    for j, (_, source, _, _) in enumerate(split):
        by_source.setdefault(source, []).append(j)
    items: List[Dict[str, Any]] = []
    for j, (idx, source, head, nxt) in enumerate(split):
        n = len(nxt.split())
        others = [split[o][3] for o in by_source[source] if o != j and 0.5 * n <= len(split[o][3].split()) <= 2 * n]
        others = [o for o in others if o != nxt]
        if len(others) < 3:
            continue
        rng = _rng("continuation", idx)
        choices = rng.sample(others, 3) + [nxt]
        rng.shuffle(choices)
        items.append(
            {
                "context": " ".join(head),
                "choices": choices,
                "label": choices.index(nxt),
                "id": f"continuation-{idx}",
                "source": source,
            }
        )
    return _sample(items, k, "continuation")


def _sample(items: List[Dict[str, Any]], k: int, name: str) -> List[Dict[str, Any]]:
    """``k`` items drawn without replacement (seeded by the task), in a shuffled order,
    so that the first ``m`` of them are a fair sample too."""
    rng = _rng("sample", name)
    order = list(range(len(items)))
    rng.shuffle(order)
    return [items[i] for i in order[:k]]


def build_tasks(
    wikitext_test: "str | Path",
    heldout: Optional[Dict[str, List[str]]] = None,
    examples: int = 300,
    tasks: Sequence[str] = TASKS,
) -> Dict[str, List[Dict[str, Any]]]:
    """The tasks' items from WikiText-2 test and the held-out documents of the prose
    sources in ``heldout`` (``{source: documents}``)."""
    passages = [("wikitext", p) for p in wikitext_passages(wikitext_test)]
    for name in PROSE_SOURCES:
        for doc in (heldout or {}).get(name, []):
            for para in re.split(r"\n\s*\n", doc):
                if len(para.split()) >= 30:
                    passages.append((name, " ".join(para.split())))
    out: Dict[str, List[Dict[str, Any]]] = {}
    for t in tasks:
        if t == "heldout-lastword":
            out[t] = lastword_items(passages, examples)
        elif t == "heldout-continuation":
            out[t] = continuation_items(passages, examples)
        else:
            raise ValueError(f"unknown built task {t!r} (choose from {', '.join(TASKS)})")
    return out

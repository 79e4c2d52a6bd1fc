"""Deterministic benchmark corpus for the selection benchmarks.

The corpus is built from text that is present offline on every machine that runs
the benchmarks:

* WikiText-2 *validation* split (``../shared/data/wikitext-2/valid.txt``, lightly
  detokenised so it reads like ordinary prose);
* the paragraphs of Python's ``pydoc_data.topics`` (English reference docs);
* the first ~2 MB of the standard library's ``.py`` sources (code).

These base documents (a few MB) are repeated, in a freshly shuffled order each
pass, with seeded perturbations: words swapped inside sentences, sentences and
lines dropped or duplicated, and coined tokens (pseudo-words, numbers,
identifiers) inserted. New coined types are introduced on a Heaps'-law schedule
(``K * bytes ** BETA``) and earlier ones recur with a skew towards the oldest, so
the type vocabulary keeps growing sub-linearly, as in a real corpus, instead of
saturating at the base vocabulary.

The generator is a single seeded stream that does not depend on the requested
size: a smaller corpus is a prefix of a larger one (up to the last shard).

Output: Parquet shards of ~64 MB of text with one ``text`` column, in
``bench-data/corpus-<size>-seed<seed>-v<version>/`` at the repository root, with
a ``manifest.json``; a folder whose manifest matches is reused.

Usage::

    python benches/corpus.py --size 200M [--seed 0] [--heaps]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = REPO / "bench-data"
WIKITEXT = REPO.parent / "shared" / "data" / "wikitext-2" / "valid.txt"

VERSION = 1
SHARD_BYTES = 64_000_000
ROW_GROUP_ROWS = 8192
STDLIB_BYTES = 2_000_000

# Heaps'-law schedule of new coined types: K * (HEAPS_B0 + bytes emitted) ** BETA, minus
# its value at 0 (the base text stands for the first HEAPS_B0 bytes of a corpus).
HEAPS_K = 5.0
HEAPS_BETA = 0.6
HEAPS_B0 = 4_000_000

# Document lengths (characters): log-normal around MEDIAN, clipped.
DOC_MEDIAN = 1500.0
DOC_SIGMA = 0.8
DOC_MIN = 300
DOC_MAX = 8000

SYLLABLES = (
    "ka ke ki ko ku ra re ri ro ru ta te ti to tu na ne ni no nu ma me mi mo mu "
    "sa se si so su la le li lo lu va ve vi vo vu da de di do du ga ge gi go gu "
    "ba be bi bo bu pa pe pi po pu fa fe fi fo fu za ze zi zo zu an en in on un "
    "ar er ir or ur al el il ol ul th sh ch st tr br dr pl gr qu ex ix ox ys ae "
    "ou ia io ea ow ay ey"
).split()


def log(msg: str) -> None:
    print(f"[corpus] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------- sizes


_SIZE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)[bB]?\s*$")
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def parse_size(text: str) -> int:
    """'200M' -> 200_000_000 bytes (decimal units; 'MB' and 'M' are the same)."""
    m = _SIZE_RE.match(str(text))
    if not m:
        raise ValueError(f"not a size: {text!r} (examples: 30M, 200MB, 1G, 1500000)")
    value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if value <= 0:
        raise ValueError(f"size must be positive: {text!r}")
    return int(value)


def size_label(nbytes: int) -> str:
    """200_000_000 -> '200M', 1_000_000_000 -> '1G', 1_500_000_000 -> '1500M'."""
    for suffix, unit in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if nbytes % unit == 0:
            return f"{nbytes // unit}{suffix}"
    return str(nbytes)


# ----------------------------------------------------------------- base documents

# A document is (kind, blocks): kind "prose" has blocks = paragraphs, each a list of
# sentences; kind "code" has blocks = lines.
Doc = Tuple[str, list]

_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_DETOK = [
    (re.compile(r" @(.)@ "), r"\1"),  # 1 @,@ 000 -> 1,000 ; 2 @.@ 5 -> 2.5 ; a @-@ b -> a-b
    (re.compile(r" ([,.;:!?%)\]}])"), r"\1"),
    (re.compile(r"([(\[{$]) "), r"\1"),
    (re.compile(r" (n't|'s|'re|'ve|'m|'ll|'d)\b"), r"\1"),
    (re.compile(r"\" (.*?) \""), r'"\1"'),
    (re.compile(r" ?<unk>"), ""),  # out-of-vocabulary markers are dropped
    (re.compile(r"  +"), " "),
]


def _detokenize(line: str) -> str:
    for pat, rep in _DETOK:
        line = pat.sub(rep, line)
    return line.strip()


def _lengths(rng: random.Random) -> Iterator[int]:
    while True:
        v = rng.lognormvariate(math.log(DOC_MEDIAN), DOC_SIGMA)
        yield int(min(DOC_MAX, max(DOC_MIN, v)))


def _group(blocks: Sequence, size_of, targets: Iterator[int]) -> List[list]:
    """Join consecutive blocks into documents of the drawn target lengths."""
    docs: List[list] = []
    cur: list = []
    cur_len = 0
    target = next(targets)
    for b in blocks:
        cur.append(b)
        cur_len += size_of(b) + 1
        if cur_len >= target:
            docs.append(cur)
            cur, cur_len, target = [], 0, next(targets)
    if cur:
        docs.append(cur)
    return docs


def _prose_block(paragraph: str) -> List[str]:
    return [s for s in _SENT_SPLIT.split(paragraph) if s]


def _para_len(block: List[str]) -> int:
    return sum(len(s) + 1 for s in block)


def wikitext_docs(path: Path, targets: Iterator[int]) -> List[Doc]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: WikiText-2 validation split not found")
    articles: List[List[List[str]]] = []
    cur: List[List[str]] = []
    for raw in path.read_text(encoding="utf-8").split("\n"):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("= ") and line.endswith(" =") and not line.startswith("= ="):
            if cur:
                articles.append(cur)
            cur = [[_detokenize(line.strip("= "))]]
            continue
        if line.startswith("= ="):
            cur.append([_detokenize(line.strip("= "))])
            continue
        block = _prose_block(_detokenize(line))
        if block:
            cur.append(block)
    if cur:
        articles.append(cur)
    docs: List[Doc] = []
    for art in articles:
        docs.extend(("prose", d) for d in _group(art, _para_len, targets))
    return docs


def pydoc_docs(targets: Iterator[int]) -> List[Doc]:
    from pydoc_data.topics import topics

    docs: List[Doc] = []
    for key in sorted(topics):
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", topics[key]) if p.strip()]
        blocks = [_prose_block(" ".join(p.split())) for p in paragraphs]
        docs.extend(("prose", d) for d in _group(blocks, _para_len, targets))
    return docs


def stdlib_files(limit: int = STDLIB_BYTES) -> List[Path]:
    root = Path(os.path.dirname(os.__file__))
    out: List[Path] = []
    total = 0
    for p in sorted(root.glob("*.py")):
        if total >= limit:
            break
        try:
            n = p.stat().st_size
        except OSError:
            continue
        out.append(p)
        total += n
    return out


def stdlib_docs(targets: Iterator[int], limit: int = STDLIB_BYTES) -> List[Doc]:
    docs: List[Doc] = []
    for p in stdlib_files(limit):
        lines = p.read_text(encoding="utf-8", errors="replace").split("\n")
        lines = [ln.rstrip() for ln in lines]
        docs.extend(("code", d) for d in _group(lines, len, targets))
    return docs


def base_documents(seed: int) -> List[Doc]:
    rng = random.Random(f"zipcal-bench-base-{seed}")
    targets = _lengths(rng)
    docs = wikitext_docs(WIKITEXT, targets) + pydoc_docs(targets) + stdlib_docs(targets)
    return docs


def render(doc: Doc) -> str:
    kind, blocks = doc
    if kind == "code":
        return "\n".join(blocks)
    return "\n".join(" ".join(b) for b in blocks)


def base_digest(docs: List[Doc]) -> str:
    h = hashlib.sha256()
    for d in docs:
        h.update(render(d).encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:16]


# ----------------------------------------------------------------- perturbation


class Generator:
    """Endless stream of perturbed documents, deterministic for a seed."""

    def __init__(self, docs: List[Doc], seed: int) -> None:
        self.docs = docs
        self.rng = random.Random(f"zipcal-bench-stream-{seed}")
        self.coined: List[str] = []
        self.emitted_bytes = 0
        self.passes = 0

    # coined tokens -------------------------------------------------
    def _new_token(self) -> str:
        r = self.rng
        u = r.random()
        if u < 0.6:
            w = "".join(r.choice(SYLLABLES) for _ in range(r.randint(2, 5)))
            return w.capitalize() if r.random() < 0.3 else w
        if u < 0.85:
            if r.random() < 0.5:
                return str(r.randrange(10**7))
            return f"{r.randrange(10**4)}.{r.randrange(10**3):03d}"
        a = "".join(r.choice(SYLLABLES) for _ in range(r.randint(1, 3)))
        b = "".join(r.choice(SYLLABLES) for _ in range(r.randint(1, 2)))
        return f"{a}_{b}{r.randrange(100)}" if r.random() < 0.5 else f"{a}-{b}"

    def _tokens_for(self, nbytes: int) -> List[str]:
        """Coined tokens for a document of ``nbytes``: the new types the Heaps'
        schedule owes, plus a few reused ones (older ones more often)."""
        before = HEAPS_B0 + self.emitted_bytes
        after = before + nbytes
        owed = int(HEAPS_K * after**HEAPS_BETA) - int(HEAPS_K * before**HEAPS_BETA)
        out = []
        for _ in range(owed):
            t = self._new_token()
            self.coined.append(t)
            out.append(t)
        if self.coined:
            for _ in range(self.rng.randint(0, 3)):
                k = int(len(self.coined) * self.rng.random() ** 3)
                out.append(self.coined[k])
        return out

    # perturbation --------------------------------------------------
    def _swap_words(self, s: str) -> str:
        words = s.split(" ")
        if len(words) < 3:
            return s
        r = self.rng
        for _ in range(1 + len(words) // 25):
            i = r.randrange(len(words) - 1)
            j = min(len(words) - 1, i + r.randint(1, 3))
            words[i], words[j] = words[j], words[i]
        return " ".join(words)

    def _perturb(self, doc: Doc) -> Tuple[str, list]:
        kind, blocks = doc
        r = self.rng.random
        if kind == "code":
            out_lines: List[str] = []
            for ln in blocks:
                u = r()
                if u < 0.03:
                    continue
                if u < 0.10:
                    ln = self._swap_words(ln)
                out_lines.append(ln)
                if r() < 0.02:
                    out_lines.append(ln)
            return kind, out_lines or list(blocks[:1])
        paras: List[List[str]] = []
        for para in blocks:
            sents: List[str] = []
            for s in para:
                u = r()
                if u < 0.08 and len(para) > 1:
                    continue
                if u < 0.40:
                    s = self._swap_words(s)
                sents.append(s)
                if r() < 0.04:
                    sents.append(s)
            if sents:
                paras.append(sents)
        return kind, paras or [list(blocks[0])]

    def _insert(self, doc: Tuple[str, list], tokens: List[str]) -> Tuple[str, list]:
        kind, blocks = doc
        r = self.rng
        for t in tokens:
            i = r.randrange(len(blocks))
            if kind == "code":
                blocks[i] = f"{blocks[i]} {t}" if blocks[i] else t
            else:
                para = blocks[i]
                j = r.randrange(len(para))
                words = para[j].split(" ")
                words.insert(r.randrange(len(words) + 1), t)
                para[j] = " ".join(words)
        return kind, blocks

    def __iter__(self) -> Iterator[str]:
        order = list(range(len(self.docs)))
        while True:
            self.rng.shuffle(order)
            for k in order:
                base = self.docs[k]
                doc = self._perturb(base)
                approx = sum(len(x) for x in doc[1]) if doc[0] == "code" else sum(map(_para_len, doc[1]))
                doc = self._insert(doc, self._tokens_for(approx))
                text = render(doc)
                self.emitted_bytes += len(text)
                yield text
            self.passes += 1


# ----------------------------------------------------------------- building


def corpus_dir(size: int, seed: int, cache: Path = DEFAULT_CACHE) -> Path:
    return cache / f"corpus-{size_label(size)}-seed{seed}-v{VERSION}"


def _manifest_ok(folder: Path, size: int, seed: int, digest: str) -> Optional[dict]:
    mpath = folder / "manifest.json"
    if not mpath.is_file():
        return None
    try:
        m = json.loads(mpath.read_text())
    except (OSError, ValueError):
        return None
    if (m.get("size"), m.get("seed"), m.get("version"), m.get("base_digest")) != (size, seed, VERSION, digest):
        return None
    if not all((folder / f).is_file() for f in m.get("files", [])):
        return None
    return m


def build_corpus(size: int, seed: int = 0, cache: Path = DEFAULT_CACHE, force: bool = False) -> dict:
    """Build (or reuse) the corpus of at least ``size`` bytes of UTF-8 text.
    Returns the manifest, with ``paths`` (absolute shard paths) added."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    docs = base_documents(seed)
    digest = base_digest(docs)
    folder = corpus_dir(size, seed, cache)
    m = None if force else _manifest_ok(folder, size, seed, digest)
    if m is not None:
        log(f"reusing {folder} ({m['bytes'] / 1e6:.1f} MB, {m['rows']} docs, {len(m['files'])} shards)")
        m["paths"] = [str(folder / f) for f in m["files"]]
        return m

    base_bytes = sum(len(render(d).encode("utf-8")) for d in docs)
    kinds: Dict[str, int] = {}
    for k, _ in docs:
        kinds[k] = kinds.get(k, 0) + 1
    log(f"base: {len(docs)} documents, {base_bytes / 1e6:.2f} MB ({kinds}); building {size / 1e6:.0f} MB in {folder}")
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f".{folder.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    gen = Generator(docs, seed)
    files: List[str] = []
    total = rows = 0
    shard: List[str] = []
    shard_bytes = 0
    lengths: List[int] = []

    def flush() -> None:
        nonlocal shard, shard_bytes
        name = f"shard-{len(files):05d}.parquet"
        table = pa.table({"text": pa.array(shard, type=pa.string())})
        pq.write_table(table, tmp / name, row_group_size=ROW_GROUP_ROWS, compression="snappy")
        files.append(name)
        log(
            f"  {name}: {len(shard)} docs, {shard_bytes / 1e6:.1f} MB (total {total / 1e6:.0f} MB, "
            f"{time.perf_counter() - t0:.0f}s)"
        )
        shard, shard_bytes = [], 0

    try:
        for text in gen:
            n = len(text.encode("utf-8"))
            shard.append(text)
            shard_bytes += n
            total += n
            rows += 1
            if len(lengths) < 100_000:
                lengths.append(len(text))
            if total >= size:
                break
            if shard_bytes >= SHARD_BYTES:
                flush()
        if shard:
            flush()
        lengths.sort()
        manifest = {
            "version": VERSION,
            "size": size,
            "seed": seed,
            "base_digest": digest,
            "base_documents": len(docs),
            "base_bytes": base_bytes,
            "bytes": total,
            "rows": rows,
            "passes": gen.passes + 1,
            "coined_types": len(gen.coined),
            "doc_chars_p10_p50_p90": [lengths[len(lengths) * q // 100] for q in (10, 50, 90)],
            "files": files,
            "python": sys.version.split()[0],
            "build_seconds": round(time.perf_counter() - t0, 1),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(
        f"built {folder}: {total / 1e6:.1f} MB, {rows} docs, {gen.passes + 1} passes, "
        f"{len(gen.coined)} coined types, {time.perf_counter() - t0:.0f}s"
    )
    manifest["paths"] = [str(folder / f) for f in files]
    return manifest


def heaps_curve(paths: Sequence[str], max_bytes: Optional[int] = None) -> List[Tuple[int, int, int]]:
    """(bytes, \\w+ tokens, distinct lowercased \\w+ types) at doubling sizes."""
    import pyarrow.parquet as pq

    word = re.compile(r"\w+")
    seen: set = set()
    nbytes = ntok = 0
    checkpoint = 1_000_000
    out = []
    for p in paths:
        for rb in pq.ParquetFile(p).iter_batches(columns=["text"], batch_size=1024):
            for t in rb.column(0).to_pylist():
                ws = word.findall(t.lower())
                ntok += len(ws)
                seen.update(ws)
                nbytes += len(t.encode("utf-8"))
                if nbytes >= checkpoint:
                    out.append((nbytes, ntok, len(seen)))
                    checkpoint *= 2
                if max_bytes and nbytes >= max_bytes:
                    return out + [(nbytes, ntok, len(seen))]
    return out + [(nbytes, ntok, len(seen))]


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="200M", help="minimum bytes of text (e.g. 30M, 200M, 1G)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default=str(DEFAULT_CACHE), help="cache folder (default: bench-data/)")
    ap.add_argument("--force", action="store_true", help="rebuild even when a matching corpus exists")
    ap.add_argument("--heaps", action="store_true", help="print the type-growth (Heaps) curve of the corpus")
    args = ap.parse_args(argv)
    m = build_corpus(parse_size(args.size), args.seed, Path(args.cache), force=args.force)
    summary = {k: v for k, v in m.items() if k != "paths"}
    print(json.dumps(summary, indent=1))
    if args.heaps:
        curve = heaps_curve(m["paths"])
        print("bytes\twords\ttypes\tlocal beta")
        prev = None
        for b, n, v in curve:
            beta = "" if prev is None else f"{math.log(v / prev[2]) / math.log(n / prev[1]):.3f}"
            print(f"{b}\t{n}\t{v}\t{beta}")
            prev = (b, n, v)
    return 0


if __name__ == "__main__":
    sys.exit(main())

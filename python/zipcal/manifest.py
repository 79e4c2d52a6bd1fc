"""Calibration manifests: what a selection was made from, how, and what it holds.

Every selection written by ``zipcal select -o FILE`` or :meth:`Selection.save
<zipcal.selection.Selection.save>` gets ``FILE.manifest.json`` beside it: the input
files with their sizes and SHA-256 hashes, the options that define the pool, the
tokenizer and its hash, the strategy, its options and seed, the selection's
statistics (timings left out), the hashes of the selection, and the command that
makes it again. ``zipcal select --verify FILE.manifest.json`` checks the inputs and
re-runs that command. The format is described in ``docs/manifest.md``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import InputError, SourceNotFoundError, ZipcalError
from .files import sha256_file

if TYPE_CHECKING:  # pragma: no cover
    from .selection import Selection

MANIFEST_VERSION = 1
SUFFIX = ".manifest.json"
# The columns of a selection that its canonical hash covers, in this order.
ROW_FIELDS = ("source", "source_row", "window", "tokens", "text")
DEFAULT_CORPUS = "<default corpus>"


class ManifestError(InputError):
    """A manifest is missing, unreadable, or cannot be verified."""


def manifest_path(output: Union[str, "os.PathLike[str]"]) -> str:
    """Where the manifest of the selection file ``output`` lives: ``<output>.manifest.json``."""
    return os.fspath(output) + SUFFIX


# ---------------------------------------------------------------- hashing


def rows_sha256(rows: Iterable[Sequence[Any]]) -> str:
    """The canonical hash of selection rows ``(source, source_row, window, tokens, text)``:
    SHA-256 of one compact JSON array per row (UTF-8, one per line), in file order.
    The same for a Parquet and a JSONL file of one selection."""
    h = hashlib.sha256()
    for r in rows:
        rec = [str(r[0]), int(r[1]), int(r[2]), int(r[3]), str(r[4])]
        h.update(json.dumps(rec, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def selection_rows(sel: "Selection") -> List[Tuple[Any, ...]]:
    """The rows of a selection that :func:`rows_sha256` covers."""
    return list(zip(sel.sources, sel.source_rows.tolist(), sel.windows.tolist(), sel.token_counts.tolist(), sel.texts))


def file_rows(path: Union[str, "os.PathLike[str]"]) -> List[Tuple[Any, ...]]:
    """The rows of a selection file (Parquet or JSONL written by ``Selection.save``)."""
    p = os.fspath(path)
    try:
        with open(p, "rb") as f:
            magic = f.read(4)
        if magic == b"PAR1":
            import pyarrow.parquet as pq

            t = pq.read_table(p, columns=list(ROW_FIELDS))
            cols = [t.column(c).to_pylist() for c in ROW_FIELDS]
            return list(zip(*cols))
        out = []
        with open(p, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    rec = json.loads(line)
                    out.append(tuple(rec[c] for c in ROW_FIELDS))
        return out
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"{p}: not a selection file written by zipcal ({e})") from None


def stable_stats(stats: Mapping[str, Any]) -> Dict[str, Any]:
    """Statistics without timings (keys ending in ``_seconds``) or what packing added
    later (``packing``), as JSON values."""
    kept = {k: v for k, v in stats.items() if not k.endswith("_seconds") and k != "packing"}
    return jsonable(kept)


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy values as Python ones and non-finite floats as None (strict JSON)."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return repr(obj)


# ---------------------------------------------------------------- describing


def describe_input(name: str) -> Dict[str, Any]:
    """Size and hash of one input file. Local files are hashed (SHA-256 of their
    bytes); remote objects are not downloaded: their size, ETag and Last-Modified
    time are recorded where the store tells them (and a hash the store holds, such as
    the Hugging Face hub's LFS SHA-256)."""
    from . import remote

    if remote.is_url(name):
        info = _remote_info(name)
        return {"name": name, "remote": True, **info}
    try:
        size = os.path.getsize(name)
        digest = sha256_file(name)
    except OSError as e:
        raise InputError(f"{name}: cannot hash the input ({e.strerror or e})") from None
    return {"name": name, "bytes": size, "sha256": digest}


def _remote_info(url: str) -> Dict[str, Any]:
    from . import remote

    out: Dict[str, Any] = {"bytes": None, "sha256": None, "etag": None, "last_modified": None}
    scheme, fs, path = remote._split(url)
    try:
        if fs is None:
            import urllib.error
            import urllib.request

            try:
                with urllib.request.urlopen(remote._request(url, "HEAD"), timeout=60) as r:
                    length = r.headers.get("Content-Length")
                    out["bytes"] = int(length) if length and length.isdigit() else None
                    out["etag"] = r.headers.get("ETag")
                    out["last_modified"] = r.headers.get("Last-Modified")
            except urllib.error.HTTPError as e:
                if e.code == 404:
                    raise SourceNotFoundError(f"{url}: no such object (HTTP 404)") from None
                if e.code != 405:  # a server without HEAD tells nothing: nothing recorded
                    raise InputError(f"{url}: HTTP {e.code} {e.reason}") from None
            return out
        inner = remote._fsspec_of.get(scheme)
        if inner is not None:
            info = inner.info(path)
            out["bytes"] = info.get("size")
            out["etag"] = info.get("ETag") or info.get("etag") or info.get("blob_id")
            mod = info.get("LastModified") or info.get("last_modified") or info.get("mtime")
            out["last_modified"] = str(mod) if mod is not None else None
            lfs = info.get("lfs")
            if isinstance(lfs, Mapping) and lfs.get("sha256"):
                out["sha256"] = str(lfs["sha256"])
            return jsonable(out)
        fi = fs.get_file_info(path)
        out["bytes"] = fi.size
        out["last_modified"] = fi.mtime.isoformat() if fi.mtime is not None else None
        return out
    except ZipcalError:
        raise
    except Exception as e:
        raise remote._error(url, e) from None


def _default_corpus_entry() -> Dict[str, Any]:
    from .default_corpus import DESCRIPTION, default_corpus

    data = json.dumps(default_corpus(), ensure_ascii=False).encode("utf-8")
    return {
        "name": DEFAULT_CORPUS,
        "description": DESCRIPTION,
        "python": sys.version.split()[0],
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def input_files(spec: Union[List[str], str, None]) -> List[str]:
    """The files an input spec names now (globs and folders expanded)."""
    from .sources import expand_paths

    if not isinstance(spec, list):
        return []
    return expand_paths(spec)


def describe_inputs(pool: Any) -> List[Dict[str, Any]]:
    """Every input of a pool: files with sizes and hashes, the embedded corpus with its
    hash, or the names of in-memory sources (not hashed)."""
    spec = getattr(pool, "input_spec", None)
    if spec == "default":
        return [_default_corpus_entry()]
    if isinstance(spec, list):
        return [describe_input(f) for f in input_files(spec)]
    names: List[str] = []
    for p in getattr(pool, "_parts", []):
        if p.source not in names:
            names.append(p.source)
    return [{"name": n, "in_memory": True, "bytes": None, "sha256": None} for n in names or ["<in-memory source>"]]


def describe_tokenizer(tokenizer: Any) -> Dict[str, Any]:
    """Name, description and SHA-256 of a tokenizer: of its ``tokenizer.json`` file, of
    the GPT-2 configuration built in, of a tokenizer object's JSON; None for words."""
    from . import _core
    from .tokenizer import GPT2, WORDS, describe, gpt2_tokenizer_json, tokenizer_json_of

    out: Dict[str, Any] = {"name": None, "description": describe(tokenizer), "path": None, "sha256": None}
    if tokenizer is None or (isinstance(tokenizer, str) and tokenizer == WORDS):
        out["name"] = WORDS  # rules, not a vocabulary: the zipcal version defines it
    elif isinstance(tokenizer, str) and tokenizer == GPT2:
        out["name"] = GPT2
        out["sha256"] = hashlib.sha256(gpt2_tokenizer_json().encode("utf-8")).hexdigest()
    elif isinstance(tokenizer, str) and tokenizer.lstrip().startswith("{"):
        out["name"] = "<tokenizer json>"
        out["description"] = "<tokenizer json>"
        out["sha256"] = hashlib.sha256(tokenizer.encode("utf-8")).hexdigest()
    elif isinstance(tokenizer, (str, os.PathLike)):
        path = tokenizer_file(os.fspath(tokenizer))
        out["name"] = os.fspath(tokenizer)
        out["path"] = path
        try:
            out["sha256"] = sha256_file(path)
        except OSError as e:
            raise InputError(f"{path}: cannot hash the tokenizer ({e.strerror or e})") from None
    elif isinstance(tokenizer, _core.Segmenter):
        out["name"] = "<Segmenter>"
    else:
        text, name = tokenizer_json_of(tokenizer)
        out["name"] = name
        out["sha256"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return out


def tokenizer_file(name: str) -> str:
    """The ``tokenizer.json`` a tokenizer path, folder or hub name stands for, found as
    :func:`zipcal.tokenizer.resolve` finds it (a hub name: the file in the Hugging Face
    cache, where resolving the tokenizer put it); the path as given when there is none."""
    from .errors import ZipcalError
    from .tokenizer import tokenizer_file as find

    try:
        return os.fspath(find(name))
    except ZipcalError:
        return os.path.join(name, "tokenizer.json") if os.path.isdir(name) else name


def command_argv(
    spec: Union[List[str], str, None],
    tokenizer: Any,
    input_options: Mapping[str, Any],
    *,
    strategy: str,
    options: Mapping[str, Any],
    seed: int,
    n: int,
) -> Optional[List[str]]:
    """The ``zipcal select`` command line that makes this selection again (no output
    option), or None when it cannot be written as one (an in-memory source, a
    tokenizer object, options that are not JSON)."""
    from .tokenizer import WORDS

    if spec is None:
        return None
    if tokenizer is None:
        tokenizer = WORDS
    if isinstance(tokenizer, os.PathLike):
        tokenizer = os.fspath(tokenizer)
    if not isinstance(tokenizer, str) or tokenizer.lstrip().startswith("{"):
        return None
    o = input_options
    argv = ["zipcal", "select", "-n", str(n), "--seq-len", str(o["seq_len"]), "--tokenizer", tokenizer]
    argv += ["--unit", str(o["unit"]), "--min-tokens", str(o["min_tokens"])]
    if o.get("text_column") is not None:
        argv += ["--text-column", str(o["text_column"])]
    argv += ["--text-split", str(o["text_split"]), "--encoding-errors", str(o["encoding_errors"])]
    if o.get("max_candidates") is not None:
        argv += ["--max-candidates", str(o["max_candidates"])]
    if o.get("max_memory") is not None:
        argv += ["--max-memory", str(o["max_memory"])]
    if o.get("chat_template") is not None:
        if not isinstance(o["chat_template"], str):
            return None
        argv += ["--chat-template", o["chat_template"]]
    argv += ["--strategy", strategy, "--seed", str(seed)]
    for k, v in sorted(options.items()):
        if jsonable(v) != v:
            return None
        if k == "weighting" and v in ("uniform", "zipf"):
            argv += ["--weighting", v]
        elif k == "draw" and isinstance(v, int) and not isinstance(v, bool):
            argv += ["--draw", str(v)]
        else:
            argv += ["--option", f"{k}={json.dumps(v, separators=(',', ':'))}"]
    if isinstance(spec, list):
        argv += (["--"] if any(s.startswith("-") for s in spec) else []) + list(spec)
    return argv


def build(
    sel: "Selection",
    *,
    output: Optional[Union[str, "os.PathLike[str]"]] = None,
    output_format: Optional[str] = None,
    file_sha256: Optional[str] = None,
    overrides: Optional[Mapping[str, Any]] = None,
) -> Dict[str, Any]:
    """The manifest of ``sel`` as a dict (see the module doc). ``output``: the selection
    file's name; ``file_sha256``: the hash of its bytes. ``overrides`` replace fields
    (one level deep into dict fields), such as ``input_options`` the caller knows
    better; ``command`` is derived after them unless they set it."""
    from . import __version__

    pool = sel.pool
    opts = getattr(pool, "options", None)
    overrides = dict(overrides or {})
    input_options: Dict[str, Any] = {
        "spec": getattr(pool, "input_spec", None),
        "text_column": getattr(opts, "text_column", None),
        "text_split": getattr(opts, "text_split", None),
        "encoding_errors": getattr(opts, "encoding_errors", None),
        "unit": pool.unit,
        "seq_len": pool.seq_len,
        "min_tokens": pool.min_tokens,
        "max_candidates": pool.max_candidates,
        "max_memory": None,
        "chat_template": None,
    }
    chat: Any = getattr(opts, "chat_template", None)
    excluded: Any = getattr(pool, "excluded_types", None)
    chat_used = chat is not None and excluded is not None
    if chat_used:
        src = chat.source
        input_options["chat_template"] = (
            os.fspath(src) if isinstance(src, (str, os.PathLike)) else {"object": chat.describe()}
        )
    input_options.update(overrides.pop("input_options", None) or {})
    command = (
        command_argv(
            input_options["spec"],
            pool.tokenizer,
            input_options,
            strategy=sel.strategy,
            options=sel.options,
            seed=sel.seed,
            n=sel.rows,
        )
        if opts is not None
        else None
    )
    m: Dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "zipcal_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "inputs": describe_inputs(pool),
        "input_options": input_options,
        "tokenizer": describe_tokenizer(pool.tokenizer),
        "chat_template": (
            {
                "source": chat.describe(),
                "sha256": hashlib.sha256(chat.template.encode("utf-8")).hexdigest(),
                "template_types": int(len(excluded)),
            }
            if chat_used
            else None
        ),
        "strategy": sel.strategy,
        "strategy_options": dict(sel.options),
        "seed": sel.seed,
        "n": sel.rows,
        "seq_len": pool.seq_len,
        "stats": stable_stats(sel.stats),
        "output": {
            "name": os.path.basename(os.fspath(output)) if output is not None else None,
            "format": output_format,
            "rows": len(sel),
            "rows_sha256": rows_sha256(selection_rows(sel)),
            "file_sha256": file_sha256,
        },
        "command": command,
    }
    for k, v in overrides.items():
        if isinstance(v, Mapping) and isinstance(m.get(k), dict):
            m[k].update(v)
        else:
            m[k] = v
    return jsonable(m)


def write(manifest: Mapping[str, Any], path: Union[str, "os.PathLike[str]"]) -> None:
    """Write a manifest as JSON, atomically."""
    from .files import atomic_path

    # The command on one line, as a shell would show it; the rest indented.
    marker = "<zipcal: command>"
    command = manifest.get("command")
    shown = {**manifest, "command": marker} if isinstance(command, list) else manifest
    text = json.dumps(shown, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    if shown is not manifest:
        head, _, tail = text.rpartition(f'"command": {json.dumps(marker)}')
        text = head + f'"command": {json.dumps(command, ensure_ascii=False)}' + tail
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


REQUIRED = ("manifest_version", "zipcal_version", "inputs", "input_options", "stats", "output", "command")


def read(path: Union[str, "os.PathLike[str]"]) -> Dict[str, Any]:
    """A manifest, checked for the fields verification needs (:class:`ManifestError`)."""
    p = os.fspath(path)
    try:
        with open(p, encoding="utf-8") as f:
            m = json.load(f)
    except FileNotFoundError:
        raise ManifestError(f"{p}: no such manifest") from None
    except OSError as e:
        raise ManifestError(f"{p}: cannot read the manifest ({e.strerror or e})") from None
    except ValueError as e:
        raise ManifestError(f"{p}: not a zipcal manifest (invalid JSON: {e})") from None
    if not isinstance(m, dict) or "manifest_version" not in m:
        raise ManifestError(f"{p}: not a zipcal manifest (no manifest_version)")
    if m["manifest_version"] != MANIFEST_VERSION:
        raise ManifestError(
            f"{p}: manifest version {m['manifest_version']!r}; this zipcal reads version {MANIFEST_VERSION}"
        )
    missing = [k for k in REQUIRED if k not in m]
    out = m.get("output")
    if not missing and not (isinstance(out, dict) and isinstance(out.get("rows_sha256"), str)):
        missing = ["output.rows_sha256"]
    if not missing and not isinstance(m["inputs"], list):
        missing = ["inputs (a list)"]
    if missing:
        raise ManifestError(f"{p}: not a valid zipcal manifest (missing {', '.join(missing)})")
    return m


# ---------------------------------------------------------------- verifying


@dataclass
class Verification:
    """The outcome of :func:`verify`: ``ok``, the re-run's rows, what differs
    (``problems``, first the one that decided) and warnings."""

    ok: bool
    rows: int = 0
    problems: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)


def _short(h: Optional[str]) -> str:
    return "none" if h is None else h[:12]


def check_input(rec: Mapping[str, Any]) -> Optional[str]:
    """What changed in a recorded input (None: unchanged, as far as can be checked)."""
    from . import remote

    name = str(rec.get("name"))
    if name == DEFAULT_CORPUS:
        now = _default_corpus_entry()
        if now["sha256"] != rec.get("sha256"):
            return (
                f"input {name} changed: sha256 {_short(now['sha256'])} (Python {now['python']}) != "
                f"recorded {_short(rec.get('sha256'))} (Python {rec.get('python')})"
            )
        return None
    if rec.get("in_memory"):
        return f"input {name} was an in-memory source and cannot be checked"
    if remote.is_url(name):
        try:
            now = _remote_info(name)
        except ZipcalError as e:
            return f"input {name} cannot be read: {e}"
        for key in ("bytes", "sha256", "etag", "last_modified"):
            if rec.get(key) is not None and now.get(key) != rec.get(key):
                return f"input {name} changed: {key} {now.get(key)} != recorded {rec.get(key)}"
        return None
    if not os.path.isfile(name):
        where = (
            ""
            if os.path.isabs(name)
            else " (relative paths are read from the current folder: verify where the selection was made)"
        )
        return f"input {name} is missing{where}"
    size = os.path.getsize(name)
    if size != rec.get("bytes"):
        return f"input {name} changed: {size} bytes != recorded {rec.get('bytes')}"
    digest = sha256_file(name)
    if digest != rec.get("sha256"):
        return f"input {name} changed: sha256 {_short(digest)} != recorded {_short(rec.get('sha256'))}"
    return None


def check_tokenizer(rec: Mapping[str, Any]) -> Optional[str]:
    """What changed in a recorded tokenizer file (None: unchanged or not hashed)."""
    from .tokenizer import GPT2, gpt2_tokenizer_json

    if not isinstance(rec, Mapping) or rec.get("sha256") is None:
        return None
    if rec.get("name") == GPT2:
        now = hashlib.sha256(gpt2_tokenizer_json().encode("utf-8")).hexdigest()
    elif rec.get("path"):
        # Found again from the name as given: a hub name's cache folder differs between machines.
        try:
            path = tokenizer_file(str(rec["name"])) if rec.get("name") else str(rec["path"])
        except ZipcalError as e:
            return f"tokenizer {rec.get('name')} cannot be found: {e}"
        if not os.path.isfile(path):
            return f"tokenizer {path} is missing"
        now = sha256_file(path)
    else:
        return None
    if now != rec["sha256"]:
        name = rec.get("name") or rec.get("path")
        return f"tokenizer {name} changed: sha256 {_short(now)} != recorded {_short(rec['sha256'])}"
    return None


def _stats_differences(recorded: Mapping[str, Any], now: Mapping[str, Any]) -> List[str]:
    keys = list(recorded) + [k for k in now if k not in recorded]
    canon = lambda v: json.dumps(v, sort_keys=True)  # noqa: E731
    return [
        f"{k} {now.get(k)!r} != recorded {recorded.get(k)!r}"
        for k in keys
        if canon(recorded.get(k)) != canon(now.get(k))
    ]


def _first_difference(published: List[Tuple[Any, ...]], rerun: List[Tuple[Any, ...]]) -> Optional[str]:
    for i, (a, b) in enumerate(zip(published, rerun)):
        if tuple(a) != tuple(b):
            return (
                f"first differing row {i}: published (source {a[0]}, source_row {a[1]}, window {a[2]}) vs "
                f"re-run (source {b[0]}, source_row {b[1]}, window {b[2]})"
            )
    if len(published) != len(rerun):
        return f"the published file has {len(published)} rows, the re-run {len(rerun)}"
    return None


def verify(
    path: Union[str, "os.PathLike[str]"],
    rerun: Callable[[List[str]], "Selection"],
) -> Verification:
    """Check a manifest: its inputs and tokenizer are unchanged, ``rerun(command)``
    (which must write nothing) gives the same selection (canonical rows hash) and the
    same statistics, and the published selection file beside the manifest, when
    present, is the one recorded. A missing or invalid manifest raises
    :class:`ManifestError`."""
    from . import __version__

    p = os.fspath(path)
    m = read(p)
    res = Verification(ok=False)
    if m["zipcal_version"] != __version__:
        res.warnings.append(
            f"the manifest was written by zipcal {m['zipcal_version']}, this is zipcal {__version__}; "
            "a different version may select differently"
        )
    command = m["command"]
    if not (
        isinstance(command, list) and command[:2] == ["zipcal", "select"] and all(isinstance(a, str) for a in command)
    ):
        raise ManifestError(
            f"{p}: the manifest records no zipcal select command to re-run "
            "(a selection from an in-memory source or a tokenizer object)"
        )
    # The inputs: the same files, unchanged.
    recorded = [str(r.get("name")) for r in m["inputs"] if isinstance(r, Mapping)]
    spec = m["input_options"].get("spec") if isinstance(m["input_options"], Mapping) else None
    for rec in m["inputs"]:
        problem = check_input(rec) if isinstance(rec, Mapping) else "an input entry is not an object"
        if problem:
            res.problems.append(problem)
            return res
    if isinstance(spec, list):
        try:
            now = input_files(spec)
        except ZipcalError as e:
            res.problems.append(f"the inputs cannot be listed: {e}")
            return res
        added = [f for f in now if f not in recorded]
        if added:
            res.problems.append(
                f"input set changed: {added[0]} is new" + (f" (and {len(added) - 1} more)" if len(added) > 1 else "")
            )
            return res
    problem = check_tokenizer(m.get("tokenizer") or {})
    if problem:
        res.problems.append(problem)
        return res
    # The selection, made again.
    sel = rerun(list(command[2:]))
    res.rows = len(sel)
    rows = selection_rows(sel)
    digest = rows_sha256(rows)
    out = m["output"]
    published_path = os.path.join(os.path.dirname(p), str(out.get("name"))) if out.get("name") else None
    published = published_path if published_path and os.path.isfile(published_path) else None
    if digest != out["rows_sha256"]:
        msg = f"different selection: rows sha256 {_short(digest)} != recorded {_short(out['rows_sha256'])}"
        if published is not None:
            first = _first_difference(file_rows(published), rows)
            msg += f"; {first}" if first else f"; the re-run matches the published file {published}"
        res.problems.append(msg)
    diffs = _stats_differences(m["stats"] if isinstance(m["stats"], Mapping) else {}, stable_stats(sel.stats))
    if diffs:
        res.problems.append("different statistics: " + "; ".join(diffs[:5]) + (" ..." if len(diffs) > 5 else ""))
    if published is not None and out.get("file_sha256") is not None:
        now_file = sha256_file(published)
        if now_file != out["file_sha256"]:
            res.problems.append(
                f"published file {published} changed since the manifest was written: "
                f"sha256 {_short(now_file)} != recorded {_short(out['file_sha256'])}"
            )
    elif published_path is not None and published is None:
        res.warnings.append(
            f"the published file {published_path} is not beside the manifest; only the re-run was checked"
        )
    res.ok = not res.problems
    return res

"""A few BIG-bench multiple-choice tasks for the quality experiment, extracted offline.

The PyPI sdist ``bigbench==1.0.0`` (358 MB) holds every task of the benchmark
as ``bigbench/benchmark_tasks/<task>/task.json``. At set-up time this module
gets the sdist (or reuses ``bigbench-1.0.0.tar.gz`` already in the destination
folder), checks its SHA-256, reads only the ``task.json`` of the tasks in
:data:`TASKS` (stopping as soon as it has them), converts them to the JSONL
format of :func:`zipcal.eval.read_tasks` (``{"context", "choices", "label"}``
per line) and writes them atomically into ``~/.cache/zipcal/bigbench/`` (or
``$ZIPCAL_BIGBENCH_DIR``), with a ``manifest.json``. It does nothing when the
files are already there. The downloaded sdist is deleted afterwards unless
``--keep-sdist`` is given.

    python -m zipcal.experiments.bigbench extract [--dest DIR] [--force] [--keep-sdist]
    python python/zipcal/experiments/bigbench.py extract      # before zipcal is built

The download is ``pip download bigbench==1.0.0 --no-deps --no-binary :all:``.
pip >= 26 refuses it (the sdist's metadata declares a direct URL dependency,
``bleurt @ file://...``, which pip now rejects for PyPI files even with
``--no-deps``); the file is then fetched from the same index's simple API
(``$PIP_INDEX_URL`` or PyPI) with ``urllib``. Either way the SHA-256 must match.

The module needs only the standard library (it uses ``zipcal.errors`` when the
package is importable), so ``scripts/env.sh`` can run it by path before the
compiled extension is built.

Conversion: BIG-bench's zero-shot prompt for JSON tasks, ``task_prefix +
example_input_prefix + input + example_output_prefix`` (defaults ``"\\nQ: "``,
``"\\nA: "``), leading whitespace and the output prefix's trailing spaces
stripped (the scorer puts a space before each choice), in the *cloze* form: the
choices are not listed in the prompt (BIG-bench's ``append_choices_to_input``,
on by default there, is ignored) and each is scored by its log-likelihood as the
answer. Models of SmolLM2-135M's size cannot use a listed-choices prompt (they
are evaluated in the cloze form by their authors too): with the choices listed
it scored at or below chance on emoji_movie (11 % vs 20 %) and social_iqa
(28 % vs 33 %), in the cloze form 35 % and 39 %. The correct choice is the one
with the highest ``target_scores`` value; examples without a unique best choice
are dropped, exact duplicates too. Choices and examples are shuffled with seeds
derived from the task name (the task files often list the correct choice first
and group similar examples), so the first ``k`` examples are a fair sample and
ties in the scorer cannot favour the correct answer.

Task choice (:data:`TASKS`): English multiple-choice tasks with short prompts
(14-40 tokens) and 2-6 choices on which the dense SmolLM2-135M scores well above
chance, so that compression damage shows; measured on up to 100 examples of
each (cloze form, accuracy / chance):

* ``movie_recommendation`` (500 examples, 4 choices): 63 % / 25 %
* ``similarities_abstraction`` (76, 4-6): 62 % / 24 %
* ``phrase_relatedness`` (100, 4): 47 % / 25 %
* ``emoji_movie`` (100, 5): 35 % / 20 %
* ``social_iqa`` (1935, 2-3): 39 % / 33 %

Screened and left out, at or near chance: anachronisms, analytic_entailment,
causal_judgment (also long prompts), hindu_knowledge (28 % / 25 %),
physical_intuition, odd_one_out (29 % / 21 %), code_line_description, crass_ai
(with the choices listed); too few examples: general_knowledge (69, up to 13
choices), human_organs_senses (42), riddle_sense (49).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import random
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

log = logging.getLogger("zipcal.experiments.bigbench")

BIGBENCH_VERSION = "1.0.0"
SDIST_NAME = f"bigbench-{BIGBENCH_VERSION}.tar.gz"
SDIST_SHA256 = "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2"
# Bump when the conversion changes: files of another format are re-extracted.
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
INSTALL_COMMAND = "python -m zipcal.experiments.bigbench extract"

# Small English multiple-choice tasks with short prompts and few choices on which the
# dense SmolLM2-135M scores well above chance (see the module docstring).
TASKS = ("movie_recommendation", "similarities_abstraction", "phrase_relatedness", "emoji_movie", "social_iqa")

_TASK_MEMBER = re.compile(r"^[^/]+/bigbench/benchmark_tasks/([^/]+)/task\.json$")


try:  # a ZipcalError when the package is importable; this file also runs standalone
    from zipcal.errors import ZipcalError as _ErrorBase
except ImportError:  # pragma: no cover - only before zipcal is built/installed

    class _ErrorBase(Exception):  # type: ignore[no-redef]
        pass


class BigBenchError(_ErrorBase, RuntimeError):
    """The BIG-bench task files cannot be obtained or are missing."""


def default_dir() -> Path:
    """``$ZIPCAL_BIGBENCH_DIR`` or ``~/.cache/zipcal/bigbench``."""
    env = os.environ.get("ZIPCAL_BIGBENCH_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "zipcal" / "bigbench"


def task_path(task: str, dest: "str | os.PathLike[str] | None" = None) -> Path:
    return (Path(dest) if dest is not None else default_dir()) / f"{task}.jsonl"


def _manifest(dest: Path) -> Dict[str, Any]:
    try:
        return json.loads((dest / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def missing_tasks(tasks: Sequence[str] = TASKS, dest: "str | os.PathLike[str] | None" = None) -> List[str]:
    """The tasks of ``tasks`` whose converted files are absent (or of an older format)."""
    d = Path(dest) if dest is not None else default_dir()
    man = _manifest(d).get("tasks", {})
    return [t for t in tasks if not task_path(t, d).is_file() or man.get(t, {}).get("format") != FORMAT_VERSION]


def task_files(tasks: Sequence[str] = TASKS, dest: "str | os.PathLike[str] | None" = None) -> Dict[str, Path]:
    """Paths of the converted task files; :class:`BigBenchError` naming the
    set-up command when any is missing."""
    d = Path(dest) if dest is not None else default_dir()
    miss = missing_tasks(tasks, d)
    if miss:
        raise BigBenchError(
            f"BIG-bench task files missing in {d}: {', '.join(miss)}. Install them with "
            f"`{INSTALL_COMMAND}` (or `source scripts/env.sh test`); it downloads the bigbench=="
            f"{BIGBENCH_VERSION} sdist from PyPI once. ZIPCAL_BIGBENCH_DIR overrides the folder."
        )
    return {t: task_path(t, d) for t in tasks}


# --------------------------------------------------------------------------
# conversion
# --------------------------------------------------------------------------
def _rng(*parts: Any) -> random.Random:
    h = hashlib.sha256("\0".join(str(p) for p in parts).encode("utf-8")).digest()
    return random.Random(int.from_bytes(h[:8], "little"))


def convert_task(task: Dict[str, Any], name: str, append_choices: Optional[bool] = False) -> List[Dict[str, Any]]:
    """BIG-bench JSON task -> list of ``{"context", "choices", "label", "id"}`` items.

    ``append_choices``: list the choices in the context (BIG-bench's
    ``append_choices_to_input``; ``None`` follows the task's own setting, whose
    default is true). False by default: the cloze form, see the module notes."""
    prefix = str(task.get("task_prefix", ""))
    in_prefix = task.get("example_input_prefix", "\nQ: ")
    out_prefix = task.get("example_output_prefix", "\nA: ")
    choice_prefix = task.get("choice_prefix", "\n  choice: ")
    append = bool(task.get("append_choices_to_input", True)) if append_choices is None else append_choices
    items: List[Dict[str, Any]] = []
    seen = set()
    for i, ex in enumerate(task.get("examples", [])):
        scores = ex.get("target_scores")
        if not isinstance(scores, dict) or len(scores) < 2 or not isinstance(ex.get("input"), str):
            continue
        choices = [str(c) for c in scores]
        vals = [float(v) for v in scores.values()]
        best = max(vals)
        if vals.count(best) != 1 or len(set(choices)) != len(choices):
            continue
        key = json.dumps([ex["input"], sorted(scores.items())], sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        correct = choices[vals.index(best)]
        _rng(name, "choices", i).shuffle(choices)
        body = in_prefix + ex["input"]
        if append:
            body += choice_prefix + choice_prefix.join(choices)
        context = (prefix + body + out_prefix).lstrip().rstrip(" \t")
        items.append({"id": f"{name}/{i}", "context": context, "choices": choices, "label": choices.index(correct)})
    _rng(name, "examples").shuffle(items)
    return items


def _write_atomic(path: Path, write: Callable[[Any], None]) -> None:
    """Write ``path`` through ``write(file)`` into a temporary file, then rename it
    (stdlib only: this module runs before the package is built)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _write_jsonl(path: Path, items: Iterable[Dict[str, Any]]) -> None:
    _write_atomic(path, lambda fh: fh.writelines(json.dumps(it, ensure_ascii=False) + "\n" for it in items))


def _write_json(path: Path, obj: Any) -> None:
    _write_atomic(path, lambda fh: json.dump(obj, fh, indent=1, sort_keys=True))


# --------------------------------------------------------------------------
# the sdist
# --------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    # not zipcal.files.sha256_file: this file runs standalone, before zipcal is built
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _pip_rejects_direct_url_deps() -> bool:
    """pip 26 refuses any PyPI distribution whose metadata declares a direct URL
    dependency, even for ``pip download --no-deps``; bigbench 1.0.0 declares one
    (``bleurt @ file://...``), so such a pip cannot download it."""
    import importlib.util

    try:
        return importlib.util.find_spec("pip._internal.metadata.direct_references") is not None
    except (ImportError, ValueError):
        return False


def _pip_download(into: Path) -> Optional[str]:
    """``pip download bigbench==1.0.0 --no-deps --no-binary :all: -d into``; the error text on failure."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        f"bigbench=={BIGBENCH_VERSION}",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--disable-pip-version-check",
        "-q",
        "-d",
        str(into),
    ]
    log.info("downloading the bigbench sdist: %s", " ".join(cmd))
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode == 0 and (into / SDIST_NAME).is_file():
        return None
    tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-6:]
    return f"`{' '.join(cmd)}` failed (exit {proc.returncode}): " + " / ".join(tail)


def _index_download(into: Path, expected_sha256: Optional[str]) -> Path:
    """The sdist from the package index's simple API (PEP 691 JSON, or the PEP 503
    HTML page), at ``$PIP_INDEX_URL`` or PyPI, streamed to ``into``."""
    import urllib.parse
    import urllib.request

    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
    page = f"{index}/bigbench/"
    req = urllib.request.Request(page, headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        ctype = resp.headers.get("Content-Type", "")
        body = resp.read().decode("utf-8", "replace")
    url = None
    if "json" in ctype:
        for f in json.loads(body).get("files", []):
            if f.get("filename") == SDIST_NAME:
                url = urllib.parse.urljoin(page, f["url"])
    else:
        for href in re.findall(r'href="([^"]+)"', body):
            if urllib.parse.urlsplit(href).path.rsplit("/", 1)[-1] == SDIST_NAME:
                url = urllib.parse.urljoin(page, href.replace("&amp;", "&"))
    if url is None:
        raise BigBenchError(
            f"{page} lists no {SDIST_NAME} (this index does not serve it); "
            f"with a copy of the file, run: {INSTALL_COMMAND} --sdist PATH"
        )
    log.info("downloading %s", url.split("#")[0])
    out = into / SDIST_NAME
    h = hashlib.sha256()
    with urllib.request.urlopen(url.split("#")[0], timeout=120) as resp, open(out, "wb") as fh:
        for block in iter(lambda: resp.read(1 << 20), b""):
            fh.write(block)
            h.update(block)
    if expected_sha256 and h.hexdigest() != expected_sha256:
        raise BigBenchError(f"{url}: SHA-256 {h.hexdigest()} is not the expected {expected_sha256}")
    return out


def download_sdist(into: Path, expected_sha256: Optional[str] = SDIST_SHA256) -> Path:
    """Download ``bigbench-1.0.0.tar.gz`` into ``into``: with ``pip download
    bigbench==1.0.0 --no-deps --no-binary :all:`` where the installed pip accepts
    it, else (pip >= 26, see :func:`_pip_rejects_direct_url_deps`, or pip failing)
    straight from the index's simple API, the file checked against its pinned SHA-256."""
    why = "pip rejects bigbench's direct URL dependency" if _pip_rejects_direct_url_deps() else _pip_download(into)
    if why is None:
        return into / SDIST_NAME
    log.info("%s; fetching the file from the package index instead", why)
    try:
        return _index_download(into, expected_sha256)
    except OSError as exc:  # URLError is an OSError
        raise BigBenchError(f"cannot download {SDIST_NAME}: {why}; index download: {exc}") from None


def extract(
    dest: "str | os.PathLike[str] | None" = None,
    *,
    tasks: Sequence[str] = TASKS,
    sdist: "str | os.PathLike[str] | None" = None,
    force: bool = False,
    keep_sdist: bool = False,
    expected_sha256: Optional[str] = SDIST_SHA256,
) -> Dict[str, Path]:
    """Make sure the converted files of ``tasks`` are in ``dest``; returns their paths.

    A no-op when they are already there (unless ``force``). The sdist is
    ``sdist`` when given, else ``dest/bigbench-1.0.0.tar.gz`` when present,
    else downloaded into a temporary folder (moved into ``dest`` with
    ``keep_sdist``, deleted otherwise). Its SHA-256 must be ``expected_sha256``
    (that of the PyPI file; ``None`` skips the check, for test archives).
    """
    d = Path(dest) if dest is not None else default_dir()
    todo = list(tasks) if force else missing_tasks(tasks, d)
    if not todo:
        log.info("BIG-bench tasks already in %s", d)
        return {t: task_path(t, d) for t in tasks}
    d.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=".bigbench-sdist-", dir=d) as tmpdir:
        src = Path(sdist) if sdist is not None else d / SDIST_NAME
        downloaded = False
        if not src.is_file():
            if sdist is not None:
                raise BigBenchError(f"sdist not found: {src}")
            src = download_sdist(Path(tmpdir), expected_sha256)
            downloaded = True
        digest = _sha256(src) if expected_sha256 else None
        if digest != expected_sha256:
            raise BigBenchError(f"{src}: SHA-256 {digest} is not that of the PyPI bigbench=={BIGBENCH_VERSION} sdist")
        found: Dict[str, List[Dict[str, Any]]] = {}
        with tarfile.open(src, "r:gz") as tar:
            for member in tar:
                m = _TASK_MEMBER.match(member.name)
                if not m or m.group(1) not in todo or not member.isfile():
                    continue
                fh = tar.extractfile(member)
                assert fh is not None
                found[m.group(1)] = convert_task(json.load(fh), m.group(1))
                if len(found) == len(todo):
                    break  # the archive is read as a stream: stop early
        absent = [t for t in todo if t not in found]
        if absent:
            raise BigBenchError(f"{src} holds no multiple-choice task.json for {', '.join(absent)}")
        man = _manifest(d)
        man.update({"bigbench_version": BIGBENCH_VERSION, "sdist_sha256": digest})
        entries = man.setdefault("tasks", {})
        for t in todo:
            if not found[t]:
                raise BigBenchError(f"task {t} has no usable multiple-choice examples")
            _write_jsonl(task_path(t, d), found[t])
            entries[t] = {
                "format": FORMAT_VERSION,
                "examples": len(found[t]),
                "choices": sorted({len(it["choices"]) for it in found[t]}),
            }
            log.info("BIG-bench %s: %d examples -> %s", t, len(found[t]), task_path(t, d))
        _write_json(d / MANIFEST, man)
        if downloaded and keep_sdist:
            os.replace(src, d / SDIST_NAME)
    log.info("BIG-bench extraction took %.1f s", time.perf_counter() - t0)
    return {t: task_path(t, d) for t in tasks}


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m zipcal.experiments.bigbench", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command")
    e = sub.add_parser("extract", help="extract the quality experiment's BIG-bench tasks (no-op when present)")
    e.add_argument("--dest", default=None, help=f"folder (default $ZIPCAL_BIGBENCH_DIR or {default_dir()})")
    e.add_argument("--tasks", default=None, help=f"comma list (default {','.join(TASKS)})")
    e.add_argument("--sdist", default=None, help=f"a local {SDIST_NAME} instead of downloading it")
    e.add_argument("--force", action="store_true", help="re-extract even when the files are there")
    e.add_argument("--keep-sdist", action="store_true", help="keep the downloaded sdist in --dest for re-use")
    e.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.command != "extract":
        p.print_help()
        return 2
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s", stream=sys.stderr)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else list(TASKS)
    try:
        paths = extract(args.dest, tasks=tasks, sdist=args.sdist, force=args.force, keep_sdist=args.keep_sdist)
    except BigBenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        for t, path in paths.items():
            print(f"{t}\t{path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

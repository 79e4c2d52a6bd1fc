"""Hugging Face hub names (``org/name``, ``org/name@revision``) resolved through the
Hugging Face cache, as transformers resolves them.

``huggingface_hub`` does the work, with its own configuration: the cache folder
(``HF_HOME``, ``HF_HUB_CACHE``), offline mode (``HF_HUB_OFFLINE``,
``TRANSFORMERS_OFFLINE``), the endpoint (``HF_ENDPOINT``) and the token (``HF_TOKEN`` or
the login that ``hf auth login`` saved). Files come from the cache when it holds them;
otherwise they are downloaded where the network allows, with huggingface_hub's progress
bars. Only what is needed is fetched: ``tokenizer.json`` for a tokenizer (or the
tokenizer files transformers reads, for a chat template); the configuration,
safetensors weights and tokenizer files for a model.

Every failure is one line naming the repository: not in the cache and offline, the hub
cannot be reached, gated or private, no such repository, no such revision, no such file
in the repository. A local path of the same name always wins: callers ask this module
only about names that are not local paths.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .errors import InvalidArgumentError, MissingDependencyError, SourceNotFoundError

TOKENIZER_FILE = "tokenizer.json"
# What transformers' AutoTokenizer reads from a repository (chat templates included).
TOKENIZER_PATTERNS: List[str] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "vocab.txt",
    "chat_template.jinja",
    "chat_template.json",
    "config.json",
]
# What ``load_model`` needs of a model repository (never other weight formats, nor
# the duplicate checkpoints some repositories hold, like ``consolidated.safetensors``).
MODEL_PATTERNS: List[str] = [
    "generation_config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "model-*.safetensors",
    *TOKENIZER_PATTERNS,
]
LOGIN_HINT = "log in with `hf auth login` or set HF_TOKEN"
PIP = "pip install huggingface_hub"

# A repository id as the hub accepts it: ``name`` or ``namespace/name``, each part of
# letters, digits, '-', '_' and '.', starting and ending with a letter, digit or '_'.
_PART = r"[A-Za-z0-9_](?:[\w.\-]{0,94}[A-Za-z0-9_])?"
_REPO_ID = re.compile(rf"^(?:{_PART}/)?{_PART}$", re.ASCII)
# Names that end like a file are paths, never repositories.
_FILE_SUFFIXES = (
    ".json",
    ".jsonl",
    ".txt",
    ".model",
    ".safetensors",
    ".bin",
    ".gguf",
    ".pt",
    ".pth",
    ".parquet",
)


class HubError(SourceNotFoundError):
    """A hub name could not be resolved to files (not cached and offline, unreachable,
    gated, no such repository, revision or file). Also a ``FileNotFoundError``."""


def split_revision(name: str) -> Tuple[str, Optional[str]]:
    """``("org/name", "rev")`` of ``"org/name@rev"``; ``("org/name", None)`` without ``@``."""
    repo, sep, rev = name.partition("@")
    return repo, (rev if sep else None)


def is_hub_name(s: Any) -> bool:
    """Whether ``s`` looks like a hub repository id: ``name`` or ``org/name``, optionally
    followed by ``@revision``; never a path with more than one ``/``, a backslash, a
    leading ``.`` or ``~``, nor a name ending like a file (``.json``, ``.gguf``...).
    Callers check first that no local path of that name exists."""
    if not isinstance(s, str):
        return False
    repo, rev = split_revision(s)
    if rev is not None and (not rev or rev.strip() != rev or ".." in rev):
        return False
    if not _REPO_ID.match(repo) or "--" in repo or ".." in repo:
        return False
    return not repo.lower().endswith(_FILE_SUFFIXES)


# ---------------------------------------------------------------- huggingface_hub


def _hf() -> Any:
    try:
        import huggingface_hub
        import huggingface_hub.constants  # a submodule the package does not load lazily
    except ImportError:
        raise MissingDependencyError(f"hub names need huggingface_hub: {PIP}") from None
    return huggingface_hub


def _error_class(name: str) -> type:
    """An exception class of huggingface_hub by name (a class nothing raises if this
    version lacks it)."""
    for module in ("huggingface_hub.errors", "huggingface_hub.utils"):
        try:
            mod = __import__(module, fromlist=[name])
        except ImportError:
            continue
        cls = getattr(mod, name, None)
        if isinstance(cls, type):
            return cls
    return type(f"_Absent{name}", (Exception,), {})


def cache_dir() -> str:
    """The Hugging Face hub cache folder huggingface_hub uses (``HF_HUB_CACHE``,
    default ``$HF_HOME/hub``)."""
    return str(_hf().constants.HF_HUB_CACHE)


def is_offline() -> bool:
    """Whether huggingface_hub is in offline mode (``HF_HUB_OFFLINE`` or
    ``TRANSFORMERS_OFFLINE``, read when huggingface_hub is imported)."""
    constants = _hf().constants
    fn = getattr(constants, "is_offline_mode", None)
    return bool(fn() if callable(fn) else getattr(constants, "HF_HUB_OFFLINE", False))


def _endpoint() -> str:
    return str(getattr(_hf().constants, "ENDPOINT", "https://huggingface.co"))


def _shown(repo: str, revision: Optional[str]) -> str:
    return f"{repo}@{revision}" if revision else repo


def _chain(exc: BaseException) -> List[BaseException]:
    """``exc`` and its causes/contexts, outermost first."""
    out: List[BaseException] = []
    cur: Optional[BaseException] = exc
    while cur is not None and all(cur is not seen for seen in out):
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def _short_reason(exc: BaseException) -> str:
    """The root cause of a network failure in a few words: ``[Errno 111] Connection
    refused``, ``HTTP 503``, ``timed out``..."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int):
        return f"HTTP {status}"
    inner = _chain(exc)[-1]
    text = str(inner).strip().splitlines()[0] if str(inner).strip() else ""
    if not text:
        return type(inner).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _unreachable(shown: str, exc: BaseException, missing: str) -> HubError:
    """The error for files that are not in the cache when the hub gave no answer:
    ``org/name: <missing> and HF_HUB_OFFLINE is set`` or ``... and the hub cannot be
    reached (<endpoint>: <reason>)``."""
    offline_cls = _error_class("OfflineModeIsEnabled")
    if is_offline() or any(isinstance(e, offline_cls) for e in _chain(exc)):
        return HubError(f"{shown}: {missing} and HF_HUB_OFFLINE is set")
    return HubError(
        f"{shown}: {missing} and the hub cannot be reached ({_endpoint()}: {_short_reason(_network_cause(exc))})"
    )


def _network_cause(exc: BaseException) -> BaseException:
    """The innermost exception of the chain that is not huggingface_hub's own
    "not in the cache" wrapper (the error the hub request failed with)."""
    local_cls = _error_class("LocalEntryNotFoundError")
    for e in _chain(exc):
        if not isinstance(e, local_cls):
            return e
    return exc


def _not_cached() -> str:
    return f"not in the Hugging Face cache ({cache_dir()})"


def _map_error(exc: BaseException, repo: str, revision: Optional[str], missing: str) -> Exception:
    """One-line :class:`HubError` for an exception of ``snapshot_download`` or of a hub
    request; ``missing`` says what the cache lacks, for the offline and unreachable
    cases (anything unrecognised is returned as it is)."""
    shown = _shown(repo, revision)
    gated = _error_class("GatedRepoError")
    repo_missing = _error_class("RepositoryNotFoundError")
    rev_missing = _error_class("RevisionNotFoundError")
    disabled = _error_class("DisabledRepoError")
    incomplete = _error_class("IncompleteSnapshotError")
    local_missing = _error_class("LocalEntryNotFoundError")
    offline = _error_class("OfflineModeIsEnabled")
    http_error = _error_class("HfHubHTTPError")
    invalid = _error_class("HFValidationError")
    if isinstance(exc, gated):
        return HubError(
            f"{shown}: the repository is gated or private: ask for access at {_endpoint()}/{repo} and {LOGIN_HINT}"
        )
    if isinstance(exc, repo_missing):
        return HubError(f"{shown}: no such repository on the hub (if it is private, {LOGIN_HINT})")
    if isinstance(exc, rev_missing):
        return HubError(f"{shown}: no revision {revision or 'main'!r} in the repository on the hub")
    if isinstance(exc, disabled):
        return HubError(f"{shown}: the repository is disabled on the hub")
    if isinstance(exc, incomplete):
        folder = getattr(exc, "snapshot_path", None) or cache_dir()
        return _unreachable(shown, exc, f"the cached copy ({folder}) is incomplete")
    if isinstance(exc, (local_missing, offline)):
        return _unreachable(shown, exc, missing)
    if isinstance(exc, http_error):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            return HubError(f"{shown}: access refused by the hub (HTTP {status}): {LOGIN_HINT}")
        return _unreachable(shown, exc, missing)
    if isinstance(exc, invalid):
        return HubError(f"{shown}: not a valid hub repository name ({str(exc).splitlines()[0]})")
    if _is_network_error(exc):
        return _unreachable(shown, exc, missing)
    if isinstance(exc, OSError):
        return HubError(f"{shown}: cannot write to the Hugging Face cache ({cache_dir()}): {exc}")
    return exc  # type: ignore[return-value]


def _is_network_error(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    return type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "requests", "urllib3")


def _snapshot(repo: str, revision: Optional[str], patterns: Sequence[str]) -> Path:
    hf = _hf()
    try:
        folder = hf.snapshot_download(repo, revision=revision, allow_patterns=list(patterns))
    except Exception as exc:
        mapped = _map_error(exc, repo, revision, _not_cached())
        if mapped is exc:
            raise
        raise mapped from None
    return Path(folder)


def _listing(repo: str, commit: str) -> Optional[List[str]]:
    """The repository's file list at ``commit`` as huggingface_hub cached it when it
    last asked the hub (None when it never did, or this version keeps none)."""
    try:
        from huggingface_hub import get_cached_repo_tree

        return [f.path for f in get_cached_repo_tree(repo, revision=commit)]
    except Exception:
        return None


def _missing_file(
    repo: str, revision: Optional[str], folder: Path, missing: str, hint: str, also: Sequence[str] = ()
) -> HubError:
    """The error for a file that ``snapshot_download`` did not bring (``missing``, or any
    of ``also`` in its place): the repository has none, or the cached copy lacks it and
    the hub cannot be asked."""
    shown = _shown(repo, revision)
    lacks = HubError(f"{shown}: the repository has no {missing}{hint}")
    listing = _listing(repo, folder.name)
    if listing is not None and not any(f in listing for f in (missing, *also)):
        return lacks
    cached = f"the cached copy ({folder}) has no {missing}"
    if is_offline():
        return _unreachable(shown, ConnectionError(), cached)
    try:  # the hub was asked and answered, or could not be reached: which?
        _hf().HfApi().repo_info(repo, revision=revision)
    except Exception as exc:
        mapped = _map_error(exc, repo, revision, cached)
        return mapped if isinstance(mapped, HubError) else lacks
    return lacks


# One resolution per process and name: selection resolves its tokenizer more than once.
_RESOLVED: Dict[Tuple[str, str, Optional[str], str, str], Path] = {}


def _remembered(kind: str, repo: str, revision: Optional[str]) -> Tuple[Tuple[str, str, Optional[str], str, str], Any]:
    key = (kind, repo, revision, cache_dir(), _endpoint())
    found = _RESOLVED.get(key)
    return key, (found if found is not None and found.exists() else None)


def _repo_and_revision(name: str, revision: Optional[str]) -> Tuple[str, Optional[str]]:
    repo, rev = split_revision(os.fspath(name))
    if rev is not None and revision is not None and rev != revision:
        raise InvalidArgumentError(f"{name}: two revisions given ({rev!r} in the name and revision={revision!r})")
    return repo, rev if rev is not None else revision


def resolve_tokenizer_file(name: str, revision: Optional[str] = None) -> Path:
    """Local path of ``tokenizer.json`` of the hub repository ``name`` (``org/name`` or
    ``org/name@revision``), from the Hugging Face cache or downloaded into it (that
    file only). Raises :class:`HubError` (one line) when neither has it."""
    repo, revision = _repo_and_revision(name, revision)
    key, found = _remembered("tokenizer", repo, revision)
    if found is not None:
        return found
    folder = _snapshot(repo, revision, [TOKENIZER_FILE])
    path = folder / TOKENIZER_FILE
    if not path.is_file():
        raise _missing_file(
            repo,
            revision,
            folder,
            TOKENIZER_FILE,
            " (zipcal reads a fast tokenizer's tokenizer.json: save one with transformers' "
            "AutoTokenizer.from_pretrained(...).save_pretrained(DIR) and pass DIR/tokenizer.json)",
        )
    _RESOLVED[key] = path
    return path


def resolve_tokenizer_dir(name: str, revision: Optional[str] = None) -> Path:
    """Local folder (a snapshot in the Hugging Face cache) holding the tokenizer files of
    the hub repository ``name`` (``org/name`` or ``org/name@revision``) that transformers'
    ``AutoTokenizer`` reads, chat templates included; never weights. Raises
    :class:`HubError` (one line) when neither the cache nor the hub has them."""
    repo, revision = _repo_and_revision(name, revision)
    key, found = _remembered("tokenizer_dir", repo, revision)
    if found is not None:
        return found
    folder = _snapshot(repo, revision, TOKENIZER_PATTERNS)
    if not (folder / TOKENIZER_FILE).is_file() and not (folder / "tokenizer_config.json").is_file():
        raise _missing_file(
            repo, revision, folder, TOKENIZER_FILE, " nor tokenizer_config.json", also=["tokenizer_config.json"]
        )
    _RESOLVED[key] = folder
    return folder


def resolve_model_dir(name: str, revision: Optional[str] = None) -> Path:
    """Local folder (a snapshot in the Hugging Face cache) holding the configuration,
    safetensors weights and tokenizer files of the hub repository ``name`` (``org/name``
    or ``org/name@revision``), downloading what the cache lacks. Raises
    :class:`HubError` (one line) when neither the cache nor the hub has them."""
    repo, revision = _repo_and_revision(name, revision)
    key, found = _remembered("model", repo, revision)
    if found is not None:
        return found
    folder = _snapshot(repo, revision, MODEL_PATTERNS)
    if not (folder / "config.json").is_file():
        raise _missing_file(repo, revision, folder, "config.json", " (not a transformers model)")
    index = folder / "model.safetensors.index.json"
    if not (folder / "model.safetensors").is_file() and not index.is_file():
        raise _missing_file(
            repo,
            revision,
            folder,
            "model.safetensors",
            " nor model.safetensors.index.json (zipcal fetches safetensors weights only: "
            "convert the checkpoint and pass its local folder)",
            also=["model.safetensors.index.json"],
        )
    if index.is_file():
        missing = [shard for shard in _index_shards(index) if not (folder / shard).is_file()]
        if missing and not is_offline():  # shards named unlike model-*.safetensors
            folder = _snapshot(repo, revision, missing)
            missing = [shard for shard in missing if not (folder / shard).is_file()]
        if missing:
            raise _missing_file(repo, revision, folder, missing[0], "")
    _RESOLVED[key] = folder
    return folder


def _index_shards(index: Path) -> List[str]:
    import json

    try:
        weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
    except (OSError, ValueError, AttributeError):
        return []
    return sorted(set(weight_map.values())) if isinstance(weight_map, dict) else []


__all__ = [
    "HubError",
    "is_hub_name",
    "split_revision",
    "resolve_tokenizer_file",
    "resolve_tokenizer_dir",
    "resolve_model_dir",
    "cache_dir",
    "is_offline",
]

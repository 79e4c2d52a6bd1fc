"""Inputs in object stores and on the web.

``s3://bucket/key`` and ``gs://bucket/key`` are read through pyarrow's own S3 and GCS
filesystems; ``hf://datasets/org/name/path`` through ``huggingface_hub``'s filesystem;
``http(s)://`` URLs with the standard library; any other scheme through ``fsspec``
when a package for it is installed (``az://`` with ``adlfs``, say). Globs (``*``,
``?``, ``[...]``, ``**``) work where the store can list its objects (not over plain
HTTP); a URL naming a prefix is read like a folder: the supported files directly
under it.

Credentials come from each store's usual environment and configuration (for S3:
``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``~/.aws``,
instance roles, ``AWS_ENDPOINT_URL`` for S3-compatible stores; for GCS:
``GOOGLE_APPLICATION_CREDENTIALS``; for the hub: ``HF_TOKEN`` or the cached login);
zipcal takes none as an option and prints none. Errors are one line naming the URL:
a missing object, a missing bucket, refused credentials, an unreachable store.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Dict, List, Optional, Tuple

from .errors import InputError, InvalidArgumentError, MissingDependencyError, SourceNotFoundError, ZipcalError

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://(.*)$", re.S)
# pyarrow's own filesystems (scheme -> the scheme pyarrow names it by)
NATIVE = {"s3": "s3", "gs": "gs", "gcs": "gs"}
WEB = ("http", "https")
CREDENTIALS_HINT = {
    "s3": "AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws",
    "gs": "GOOGLE_APPLICATION_CREDENTIALS or gcloud's default login",
    "hf": "HF_TOKEN or `hf auth login`",
}

RETRY_SECONDS = 15
# Bytes a sequential read asks an object store for at a time (one ranged request).
READ_BUFFER = 8 << 20
# One call lists a URL once: selecting, sizing and re-reading the picks share it.
LISTING_TTL = 120.0

_lock = threading.Lock()
_filesystems: Dict[Tuple[str, str], Any] = {}
_fsspec_of: Dict[str, Any] = {}  # scheme -> the fsspec filesystem behind a wrapped one
_sizes: Dict[str, Optional[int]] = {}  # sizes learnt from listings
_listings: Dict[str, Tuple[float, Any]] = {}  # url -> (when, files or the error)


def scheme_of(s: Any) -> Optional[str]:
    """The lower-cased scheme of a URL string (None for local paths and ``file://``)."""
    if not isinstance(s, str):
        return None
    m = _URL.match(s)
    if m is None:
        return None
    scheme = m.group(1).lower()
    return None if scheme == "file" else scheme


def is_url(s: Any) -> bool:
    """Whether ``s`` names a remote input (``s3://``, ``gs://``, ``hf://``, ``http(s)://``...)."""
    return scheme_of(s) is not None


def local_path(s: str) -> str:
    """A ``file://`` URL as a plain path (anything else unchanged)."""
    return s[len("file://") :] if s[:7].lower() == "file://" else s


# ---------------------------------------------------------------- filesystems


def _filesystem(scheme: str, bucket: str) -> Any:
    """A pyarrow filesystem for the scheme (one per bucket for S3/GCS, whose region
    may differ)."""
    key = (scheme, bucket if scheme in NATIVE else "")
    with _lock:
        fs = _filesystems.get(key)
    if fs is not None:
        return fs
    import pyarrow.fs as pafs

    if NATIVE.get(scheme) == "gs":
        import datetime

        # GCS retries for 15 minutes by default; an unreachable store fails sooner.
        fs = pafs.GcsFileSystem(retry_time_limit=datetime.timedelta(seconds=RETRY_SECONDS))
    elif scheme in NATIVE:
        fs, _ = pafs.FileSystem.from_uri(f"{NATIVE[scheme]}://{bucket}")
    else:
        fs = pafs.PyFileSystem(pafs.FSSpecHandler(_fsspec(scheme)))
        _fsspec_of[scheme] = fs.handler.fs
    with _lock:
        _filesystems[key] = fs
    return fs


def _fsspec(scheme: str) -> Any:
    if scheme == "hf":
        try:
            from huggingface_hub import HfFileSystem, constants
        except ImportError:
            raise MissingDependencyError("hf:// inputs need huggingface_hub: pip install huggingface_hub") from None
        if constants.HF_HUB_OFFLINE:
            raise InputError(
                "hf:// inputs are read from the hub, and HF_HUB_OFFLINE is set: unset it, or download "
                "the files and name the local copies"
            )
        return HfFileSystem()
    try:
        import fsspec

        return fsspec.filesystem(scheme)
    except ImportError as e:
        raise MissingDependencyError(
            f"{scheme}:// inputs need fsspec and the package for this store ({e}); "
            "zipcal reads s3://, gs://, hf:// and http(s):// out of the box"
        ) from None
    except ValueError:
        raise InvalidArgumentError(
            f"unknown URL scheme {scheme}://: zipcal reads s3://, gs://, hf://, http(s):// "
            "and the schemes of installed fsspec packages"
        ) from None


def _split(url: str) -> Tuple[str, Any, str]:
    """(scheme, filesystem, the path in it) for a URL."""
    scheme = scheme_of(url)
    assert scheme is not None
    rest = _URL.match(url).group(2)  # type: ignore[union-attr]
    if scheme in WEB:
        return scheme, None, url
    bucket = rest.split("/", 1)[0]
    if scheme in NATIVE and not bucket:
        raise InvalidArgumentError(f"{url}: no bucket in the URL ({scheme}://BUCKET/KEY)")
    try:
        fs = _filesystem(scheme, bucket)
    except ZipcalError:
        raise
    except Exception as e:
        raise _error(url, e) from None
    inner = _fsspec_of.get(scheme)
    if inner is not None:
        return scheme, fs, inner._strip_protocol(url).rstrip("/")
    return scheme, fs, rest.rstrip("/")


def _url(scheme: str, path: str) -> str:
    inner = _fsspec_of.get(scheme)
    return inner.unstrip_protocol(path) if inner is not None else f"{scheme}://{path}"


# ---------------------------------------------------------------- errors


def _first_line(e: BaseException, limit: int = 240) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    text = re.sub(r"\s*\(Request ID: [^)]*\)", "", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error(url: str, e: BaseException) -> ZipcalError:
    """One line naming the URL and what went wrong."""
    scheme = scheme_of(url) or ""
    text = str(e)
    upper = text.upper()
    if "NO_SUCH_BUCKET" in upper or "NOSUCHBUCKET" in upper or "BUCKET DOES NOT EXIST" in upper:
        return SourceNotFoundError(f"{url}: no such bucket {_bucket(url)!r}")
    if isinstance(e, FileNotFoundError) or "PATH DOES NOT EXIST" in upper or "HTTP ERROR 404" in upper:
        return SourceNotFoundError(f"{url}: no such object")
    if any(
        k in upper
        for k in (
            "ACCESS_DENIED",
            "ACCESSDENIED",
            "FORBIDDEN",
            "403",
            "401",
            "UNAUTHORIZED",
            "INVALIDACCESSKEYID",
            "SIGNATUREDOESNOTMATCH",
        )
    ):
        hint = CREDENTIALS_HINT.get(NATIVE.get(scheme, scheme))
        return InputError(
            f"{url}: access denied" + (f" (zipcal uses the store's own credentials: {hint})" if hint else "")
        )
    if any(
        k in upper
        for k in (
            "NETWORK_CONNECTION",
            "COULD NOT RESOLVE",
            "CONNECTION REFUSED",
            "TIMED OUT",
            "NAME OR SERVICE NOT KNOWN",
            "OFFLINE",
            "URLOPEN ERROR",
        )
    ):
        return InputError(f"{url}: cannot reach the store ({_first_line(e)})")
    return InputError(f"{url}: {_first_line(e)}")


def _bucket(url: str) -> str:
    m = _URL.match(url)
    return m.group(2).split("/", 1)[0] if m else ""


def _not_found(url: str, scheme: str, fs: Any) -> SourceNotFoundError:
    """A missing object, or the missing bucket it would be in."""
    if scheme in NATIVE:
        import pyarrow.fs as pafs

        try:
            if fs.get_file_info(_bucket(url)).type == pafs.FileType.NotFound:
                return SourceNotFoundError(f"{url}: no such bucket {_bucket(url)!r}")
        except Exception:
            pass
    return SourceNotFoundError(f"{url}: no such object")


# ---------------------------------------------------------------- listing


def _glob_regex(pattern: str) -> "re.Pattern[str]":
    """A regular expression for a glob over '/'-separated keys: ``*`` and ``?`` stay
    within one level, ``**`` crosses levels, ``[...]`` is a character class."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and (j := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : j]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = j + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + r"\Z")


def has_glob(s: str) -> bool:
    return any(c in s for c in "*?[")


def expand(url: str, supported: Callable[[str], bool]) -> List[str]:
    """The files a URL names, sorted: the object itself; the supported files directly
    under a prefix; or the objects a glob matches. A listing (or its failure) is
    reused for :data:`LISTING_TTL` seconds."""
    now = time.monotonic()
    with _lock:
        hit = _listings.get(url)
    if hit is not None and now - hit[0] < LISTING_TTL:
        if isinstance(hit[1], BaseException):
            raise hit[1]
        return list(hit[1])
    try:
        files = _expand(url, supported)
    except ZipcalError as e:
        with _lock:
            _listings[url] = (now, e)
        raise
    with _lock:
        _listings[url] = (now, files)
    return list(files)


def _expand(url: str, supported: Callable[[str], bool]) -> List[str]:
    scheme, fs, path = _split(url)
    if fs is None:  # http(s): no listing
        if has_glob(url):
            raise InvalidArgumentError(f"{url}: http(s) URLs cannot be listed; name each file")
        _sizes[url] = _http_size(url)
        return [url]
    import pyarrow.fs as pafs

    try:
        if has_glob(path):
            cut = min(path.find(c) for c in "*?[" if c in path)
            base = path[:cut].rsplit("/", 1)[0]
            rx = _glob_regex(path)
            infos = fs.get_file_info(pafs.FileSelector(base, recursive="**" in path or "/" in path[cut:]))
            hits = sorted((i for i in infos if i.type == pafs.FileType.File and rx.match(i.path)), key=lambda i: i.path)
            if not hits:
                raise SourceNotFoundError(f"{url}: the pattern matches no object")
        else:
            info = fs.get_file_info(path)
            if info.type == pafs.FileType.File:
                hits = [info]
            elif info.type == pafs.FileType.Directory:
                infos = fs.get_file_info(pafs.FileSelector(path, recursive=False))
                hits = sorted(
                    (i for i in infos if i.type == pafs.FileType.File and supported(i.path)), key=lambda i: i.path
                )
                if not hits:
                    raise SourceNotFoundError(f"{url}: the prefix holds no supported file")
            else:
                raise _not_found(url, scheme, fs)
    except ZipcalError:
        raise
    except Exception as e:
        raise _error(url, e) from None
    urls = [_url(scheme, i.path) for i in hits]
    for u, i in zip(urls, hits):
        _sizes[u] = i.size
    return urls


def size(url: str) -> Optional[int]:
    """The size in bytes of a remote file (None when the store does not say)."""
    if url in _sizes:
        return _sizes[url]
    scheme, fs, path = _split(url)
    if fs is None:
        return _http_size(url)
    try:
        return fs.get_file_info(path).size
    except Exception:
        return None


# ---------------------------------------------------------------- opening


def open_input_stream(url: str) -> Any:
    """The stored bytes of a remote file as a sequential binary stream (``read(n)``;
    never decompressed here)."""
    scheme, fs, path = _split(url)
    try:
        if fs is None:
            return urllib.request.urlopen(_request(url), timeout=60)
        return fs.open_input_stream(path, compression=None, buffer_size=READ_BUFFER)
    except FileNotFoundError:
        raise _not_found(url, scheme, fs) from None
    except Exception as e:
        raise _error(url, e) from None


def open_input_file(url: str) -> Any:
    """A remote file with random access (for Parquet and Arrow files): ranged reads
    from object stores; a plain web server's file is read whole into memory."""
    scheme, fs, path = _split(url)
    try:
        if fs is None:
            import pyarrow as pa

            with urllib.request.urlopen(_request(url), timeout=60) as r:
                return pa.BufferReader(r.read())
        return fs.open_input_file(path)
    except FileNotFoundError:
        raise _not_found(url, scheme, fs) from None
    except Exception as e:
        raise _error(url, e) from None


def _request(url: str, method: str = "GET") -> urllib.request.Request:
    return urllib.request.Request(url, method=method, headers={"User-Agent": "zipcal"})


def _http_size(url: str) -> Optional[int]:
    try:
        with urllib.request.urlopen(_request(url, "HEAD"), timeout=60) as r:
            length = r.headers.get("Content-Length")
    except urllib.error.HTTPError as e:
        if e.code == 404:
            raise SourceNotFoundError(f"{url}: no such object (HTTP 404)") from None
        if e.code == 405:  # no HEAD: the GET will tell
            return None
        raise InputError(f"{url}: HTTP {e.code} {e.reason}") from None
    except Exception as e:
        raise _error(url, e) from None
    return int(length) if length and length.isdigit() else None

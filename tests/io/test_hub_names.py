"""Hub names (``org/name``, ``org/name@revision``) for tokenizers and models, resolved
through a fake Hugging Face cache built in a temporary folder with huggingface_hub's own
layout (``models--org--name/{blobs,refs,snapshots}``). Nothing is downloaded: offline
mode is on, or the hub is a closed port or a local server that only answers errors."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import pydoc_data.topics
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, Iterator, Optional, Union

import pytest

import zipcal
from zipcal import cli, hub
from zipcal.errors import InvalidArgumentError, MissingDependencyError, SourceNotFoundError, ZipcalError
from zipcal.tokenizer import resolve, tokenizer_file

hf_constants = pytest.importorskip("huggingface_hub.constants")

COMMIT = "a" * 40
COMMIT_V2 = "b" * 40
KW = dict(seq_len=48, min_tokens=8, text_split="blank")


def texts(n: int = 60) -> list:
    """English paragraphs from Python's own documentation (present on every Python)."""
    return sorted(t.strip() for t in pydoc_data.topics.topics.values() if len(t.strip()) > 400)[:n]


def bpe_json(vocab_size: int) -> str:
    """A byte-level BPE ``tokenizer.json`` trained here on the documentation texts."""
    from support.bpe import train_bpe

    return train_bpe(texts(120), vocab_size).to_str()


def add_to_cache(
    cache: Path,
    repo: str,
    files: Dict[str, Union[bytes, str, Path]],
    commit: str = COMMIT,
    ref: Optional[str] = "main",
) -> Path:
    """Store ``files`` as huggingface_hub does: content-addressed blobs, a snapshot
    folder of relative symlinks per commit, and ``refs/<ref>`` holding the commit."""
    storage = cache / ("models--" + repo.replace("/", "--"))
    snapshot = storage / "snapshots" / commit
    for name, content in files.items():
        if isinstance(content, Path):
            data = content.read_bytes()
        else:
            data = content.encode() if isinstance(content, str) else content
        blob = storage / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        target = snapshot / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            target.symlink_to(os.path.relpath(blob, target.parent))
        except OSError:  # no symlinks here: huggingface_hub then copies too
            shutil.copy(blob, target)
    if ref is not None:
        (storage / "refs").mkdir(parents=True, exist_ok=True)
        (storage / "refs" / ref).write_text(commit)
    return snapshot


@pytest.fixture(scope="module")
def tok_files(tmp_path_factory) -> Dict[str, Path]:
    d = tmp_path_factory.mktemp("tokenizers")
    out = {}
    for size in (300, 340):
        path = d / f"bpe{size}" / "tokenizer.json"
        path.parent.mkdir()
        path.write_text(bpe_json(size), encoding="utf-8")
        out[f"bpe{size}"] = path
    return out


@pytest.fixture
def hf_cache(tmp_path, monkeypatch) -> Iterator[Path]:
    """An empty Hugging Face cache, offline mode on, for this process (huggingface_hub
    read its constants at import: they are patched) and for subprocesses (the
    environment). The working directory is a fresh folder, so no local path shadows a
    hub name unless a test makes one."""
    home = tmp_path / "hf_home"
    cache = home / "hub"
    cache.mkdir(parents=True)
    for var, value in (("HF_HOME", home), ("HF_HUB_CACHE", cache), ("HF_HUB_OFFLINE", "1")):
        monkeypatch.setenv(var, str(value))
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub, "_RESOLVED", {})
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield cache


def online(monkeypatch, endpoint: str) -> None:
    """Offline mode off, the hub at ``endpoint``, short timeouts."""
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hf_constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(hf_constants, "HF_HUB_ETAG_TIMEOUT", 2)
    monkeypatch.setattr(hf_constants, "HF_HUB_DOWNLOAD_TIMEOUT", 2)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "2")
    monkeypatch.setenv("HF_HUB_DOWNLOAD_TIMEOUT", "2")


def run_cli(*argv: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """``zipcal ARGV`` in a fresh interpreter, so that huggingface_hub reads the
    environment at import as it does for users."""
    return subprocess.run(
        [sys.executable, "-m", "zipcal", *argv], capture_output=True, text=True, timeout=timeout, env=os.environ.copy()
    )


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name",
    ["meta-llama/Llama-3.1-8B", "gpt2-medium", "org/name@main", "org/name@refs/pr/1", "org/na_me.v2", "a/b@" + COMMIT],
)
def test_hub_names(name):
    assert hub.is_hub_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "a/b/c",
        "./tok",
        "../org/name",
        "/abs/path",
        "~/tok",
        "tokenizer.json",
        "org/tokenizer.json",
        "org/model.gguf",
        "org--x/name",
        "org/na..me",
        "org/name@",
        "org\\name",
        "-org/name",
        "org/name-",
        "",
    ],
)
def test_not_hub_names(name):
    assert not hub.is_hub_name(name)


# ---------------------------------------------------------------- tokenizers


def test_tokenizer_from_the_cache_selects_as_its_file(hf_cache, tok_files):
    add_to_cache(hf_cache, "org/tok", {"tokenizer.json": tok_files["bpe300"], "tokenizer_config.json": "{}"})
    path = hub.resolve_tokenizer_file("org/tok")
    assert path == hf_cache / "models--org--tok" / "snapshots" / COMMIT / "tokenizer.json"
    assert tokenizer_file("org/tok") == path
    assert resolve("org/tok").vocab_size() == resolve(str(tok_files["bpe300"])).vocab_size() == 300
    docs = texts()
    by_name = zipcal.select(docs, 6, tokenizer="org/tok", **KW)
    by_path = zipcal.select(docs, 6, tokenizer=str(tok_files["bpe300"]), **KW)
    assert by_name.indices.tolist() == by_path.indices.tolist()
    assert by_name.stats["types_covered"] == by_path.stats["types_covered"]


def test_cli_select_with_a_hub_tokenizer(hf_cache, tok_files, tmp_path):
    add_to_cache(hf_cache, "org/tok", {"tokenizer.json": tok_files["bpe300"]})
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts()), encoding="utf-8")
    out = tmp_path / "calib.parquet"
    argv = ["select", str(corpus), "-n", "6", "--seq-len", "48", "--min-tokens", "8", "-q"]
    r = run_cli(*argv, "--tokenizer", "org/tok", "-o", str(out))
    assert r.returncode == 0, r.stderr
    import pyarrow.parquet as pq

    by_path = zipcal.select(str(corpus), 6, seq_len=48, min_tokens=8, tokenizer=str(tok_files["bpe300"]))
    assert pq.read_table(out)["row"].to_pylist() == by_path.indices.tolist()


def test_missing_tokenizer_offline_is_one_line(hf_cache, capsys):
    with pytest.raises(hub.HubError) as ei:
        resolve("nobody/nothing")
    msg = str(ei.value)
    assert msg == f"nobody/nothing: not in the Hugging Face cache ({hf_cache}) and HF_HUB_OFFLINE is set"
    assert isinstance(ei.value, (SourceNotFoundError, FileNotFoundError, ZipcalError))
    # the command line: exit 2, one line (in-process: the patched constants)
    assert cli.main(["select", "--tokenizer", "nobody/nothing", "-n", "2", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nobody/nothing: not in the Hugging Face cache" in err[0]
    assert str(hf_cache) in err[0] and "HF_HUB_OFFLINE is set" in err[0]


def test_missing_tokenizer_offline_from_the_environment(hf_cache):
    """A fresh process: huggingface_hub reads HF_HUB_CACHE and HF_HUB_OFFLINE itself."""
    r = run_cli("select", "--tokenizer", "nobody/nothing", "-n", "2", "-q")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert f"nobody/nothing: not in the Hugging Face cache ({hf_cache}) and HF_HUB_OFFLINE is set" in lines[0]


def test_transformers_offline_counts_as_offline(hf_cache, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    r = run_cli("select", "--tokenizer", "nobody/nothing", "-n", "2", "-q")
    assert r.returncode == 2 and "HF_HUB_OFFLINE is set" in r.stderr


def test_repository_cached_without_tokenizer_json(hf_cache):
    snapshot = add_to_cache(hf_cache, "org/sp", {"tokenizer.model": b"\x00sentencepiece", "config.json": "{}"})
    with pytest.raises(hub.HubError) as ei:
        resolve("org/sp")
    assert str(ei.value) == f"org/sp: the cached copy ({snapshot}) has no tokenizer.json and HF_HUB_OFFLINE is set"


def test_tokenizer_folder_for_transformers(hf_cache, tok_files):
    """The tokenizer files transformers reads (chat templates), for zipcal.chat."""
    config = json.dumps({"chat_template": "{{ messages }}", "eos_token": "<eos>"})
    snapshot = add_to_cache(
        hf_cache, "org/chat", {"tokenizer.json": tok_files["bpe300"], "tokenizer_config.json": config}
    )
    assert hub.resolve_tokenizer_dir("org/chat") == snapshot
    bare = add_to_cache(hf_cache, "org/bare", {"config.json": "{}"})
    with pytest.raises(hub.HubError) as ei:
        hub.resolve_tokenizer_dir("org/bare")
    assert str(ei.value) == f"org/bare: the cached copy ({bare}) has no tokenizer.json and HF_HUB_OFFLINE is set"


def test_a_local_path_wins_over_a_hub_name(hf_cache, tok_files):
    add_to_cache(hf_cache, "org/tok", {"tokenizer.json": tok_files["bpe300"]})
    local = Path("org") / "tok"
    local.mkdir(parents=True)
    shutil.copy(tok_files["bpe340"], local / "tokenizer.json")
    assert resolve("org/tok").vocab_size() == 340  # the folder, not the cache
    assert resolve("org/tok/tokenizer.json").vocab_size() == 340
    shutil.rmtree("org")
    assert resolve("org/tok").vocab_size() == 300


def test_revisions(hf_cache, tok_files):
    add_to_cache(hf_cache, "org/tok", {"tokenizer.json": tok_files["bpe300"]})
    add_to_cache(hf_cache, "org/tok", {"tokenizer.json": tok_files["bpe340"]}, commit=COMMIT_V2, ref="v2")
    assert resolve("org/tok").vocab_size() == 300
    assert resolve("org/tok@main").vocab_size() == 300
    assert resolve("org/tok@v2").vocab_size() == 340
    assert resolve(f"org/tok@{COMMIT_V2}").vocab_size() == 340
    assert hub.resolve_tokenizer_file("org/tok", revision="v2").parent.name == COMMIT_V2
    with pytest.raises(hub.HubError, match=r"^org/tok@nope: not in the Hugging Face cache"):
        resolve("org/tok@nope")
    with pytest.raises(InvalidArgumentError, match="two revisions"):
        hub.resolve_tokenizer_file("org/tok@v2", revision="main")


def test_without_huggingface_hub(hf_cache, monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(MissingDependencyError, match="pip install huggingface_hub"):
        resolve("org/tok")


# ---------------------------------------------------------------- the hub's answers


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed when the socket is: nothing listens there


class FakeHub(http.server.BaseHTTPRequestHandler):
    """Answers every request with the error the hub gives for the repository's name."""

    def _answer(self) -> None:
        if "gated" in self.path:
            status, headers = 403, {"X-Error-Code": "GatedRepo"}
        elif "/revision/nope" in self.path:
            status, headers = 404, {"X-Error-Code": "RevisionNotFound"}
        elif "down" in self.path:
            status, headers = 503, {}
        else:
            status, headers = 401, {"X-Error-Code": "RepoNotFound"}
        self.send_response(status)
        for k, v in {**headers, "Content-Length": "2", "Content-Type": "application/json"}.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(b"{}")

    do_GET = do_HEAD = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def fake_hub() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_unreachable_hub(hf_cache, monkeypatch, closed_port):
    endpoint = f"http://127.0.0.1:{closed_port}"
    online(monkeypatch, endpoint)
    for fn in (hub.resolve_tokenizer_file, hub.resolve_model_dir):
        start = time.monotonic()
        with pytest.raises(hub.HubError) as ei:
            fn("org/tok")
        assert time.monotonic() - start < 10
        msg = str(ei.value)
        assert msg.startswith(f"org/tok: not in the Hugging Face cache ({hf_cache}) and the hub cannot be reached")
        assert endpoint in msg and "refused" in msg.lower() and "\n" not in msg


def test_unreachable_hub_from_the_environment(hf_cache, monkeypatch, closed_port):
    online(monkeypatch, f"http://127.0.0.1:{closed_port}")
    r = run_cli("select", "--tokenizer", "org/tok", "-n", "2", "-q")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "the hub cannot be reached" in lines[0], r.stderr


def test_cached_files_need_no_hub(hf_cache, tok_files, monkeypatch, closed_port):
    """Online but unreachable: the cache still answers, as in transformers."""
    add_to_cache(hf_cache, "org/tok", {"tokenizer.json": tok_files["bpe300"]})
    online(monkeypatch, f"http://127.0.0.1:{closed_port}")
    assert resolve("org/tok").vocab_size() == 300


@pytest.mark.parametrize(
    "name, expected",
    [
        ("org/missing", "org/missing: no such repository on the hub (if it is private, log in with"),
        ("org/gated", "org/gated: the repository is gated or private: ask for access at {endpoint}/org/gated"),
        ("org/tok@nope", "org/tok@nope: no revision 'nope' in the repository on the hub"),
        ("org/down", "org/down: not in the Hugging Face cache ({cache}) and the hub cannot be reached ({endpoint}"),
    ],
)
def test_errors_of_the_hub(hf_cache, monkeypatch, fake_hub, name, expected):
    online(monkeypatch, fake_hub)
    start = time.monotonic()
    with pytest.raises(hub.HubError) as ei:
        resolve(name)
    assert time.monotonic() - start < 10
    msg = str(ei.value)
    assert msg.startswith(expected.format(endpoint=fake_hub, cache=hf_cache)), msg
    assert "\n" not in msg
    if "gated" in name or "missing" in name:
        assert "hf auth login" in msg and "HF_TOKEN" in msg


def test_cached_copy_without_the_file_while_the_hub_fails(hf_cache, monkeypatch, fake_hub):
    snapshot = add_to_cache(hf_cache, "org/down", {"config.json": "{}"})
    online(monkeypatch, fake_hub)
    with pytest.raises(hub.HubError) as ei:
        resolve("org/down")
    cached = f"org/down: the cached copy ({snapshot}) has no tokenizer.json"
    assert str(ei.value).startswith(f"{cached} and the hub cannot be reached ({fake_hub}: HTTP 503")


# ---------------------------------------------------------------- models


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory, tok_files) -> Path:
    """A tiny random Llama and its tokenizer, saved as transformers saves them."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer

    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(
        vocab_size=300,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=None,
        eos_token_id=0,
        pad_token_id=1,
    )
    d = tmp_path_factory.mktemp("tiny-llama")
    transformers.LlamaForCausalLM(cfg).save_pretrained(d)
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_file(str(tok_files["bpe300"])), eos_token="<eos>", pad_token="<pad>"
    )
    tok.save_pretrained(d)
    assert (d / "model.safetensors").is_file() and (d / "config.json").is_file()
    return d


def model_files(folder: Path) -> Dict[str, Union[bytes, str, Path]]:
    return {f.name: f for f in folder.iterdir() if f.is_file()}


def test_load_model_from_the_cache(hf_cache, tiny_llama):
    from zipcal.models import load_model

    snapshot = add_to_cache(hf_cache, "org/tiny", model_files(tiny_llama))
    assert hub.resolve_model_dir("org/tiny") == snapshot
    model, tokenizer = load_model("org/tiny")
    assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 32
    assert len(tokenizer) == 300


def test_eval_a_hub_name(hf_cache, tiny_llama, tmp_path, capsys):
    add_to_cache(hf_cache, "org/tiny", model_files(tiny_llama))
    text = tmp_path / "eval.txt"
    text.write_text("\n\n".join(texts(5)), encoding="utf-8")
    argv = ["eval", "org/tiny", "--ppl", str(text), "--max-windows", "1", "--seq-len", "16", "--json", "-q"]
    assert cli.main(argv) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["model"] == "org/tiny" and res["perplexity"]["windows"] == 1 and res["perplexity"]["ppl"] > 1


def test_missing_model_offline(hf_cache, capsys):
    pytest.importorskip("transformers")
    from zipcal.models import ModelNotFoundError, load_model

    with pytest.raises(ModelNotFoundError) as ei:
        load_model("nobody/model")
    assert str(ei.value) == f"nobody/model: not in the Hugging Face cache ({hf_cache}) and HF_HUB_OFFLINE is set"
    for cmd in (["eval", "nobody/model", "--ppl", "x.txt"], ["compress", "nobody/model", "--method", "rtn", "-o", "o"]):
        assert cli.main(cmd) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"zipcal {cmd[0]}: error: nobody/model: not in the Hugging Face")


def test_model_cached_with_only_its_tokenizer(hf_cache, tok_files):
    """`zipcal select --tokenizer org/m` caches tokenizer.json alone: not a model yet."""
    snapshot = add_to_cache(hf_cache, "org/m", {"tokenizer.json": tok_files["bpe300"]})
    with pytest.raises(hub.HubError) as ei:
        hub.resolve_model_dir("org/m")
    assert str(ei.value) == f"org/m: the cached copy ({snapshot}) has no config.json and HF_HUB_OFFLINE is set"
    add_to_cache(hf_cache, "org/m", {"config.json": "{}"})
    with pytest.raises(hub.HubError, match="has no model.safetensors"):
        hub.resolve_model_dir("org/m")
    shards = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    add_to_cache(
        hf_cache,
        "org/m",
        {"model.safetensors.index.json": json.dumps(shards), "model-00001-of-00002.safetensors": b"x"},
    )
    with pytest.raises(hub.HubError) as ei:
        hub.resolve_model_dir("org/m")
    assert str(ei.value) == (
        f"org/m: the cached copy ({snapshot}) has no model-00002-of-00002.safetensors and HF_HUB_OFFLINE is set"
    )
    add_to_cache(hf_cache, "org/m", {"model-00002-of-00002.safetensors": b"y"})
    assert hub.resolve_model_dir("org/m") == snapshot


def test_a_local_model_folder_wins(hf_cache, tiny_llama):
    from zipcal.models import load_model

    add_to_cache(hf_cache, "org/tiny", {"config.json": "{}"})  # not loadable: must not be used
    shutil.copytree(tiny_llama, Path("org") / "tiny")
    model, _ = load_model("org/tiny")
    assert model.config.num_hidden_layers == 2

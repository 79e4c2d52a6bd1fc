"""Chat data: a ``messages`` column rendered with the model's chat template (SmolLM2's,
as it ships) before tokenization; the template's own types left out of coverage."""

from __future__ import annotations

import json
import pydoc_data.topics
import shutil
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import zipcal
from zipcal.chat import FIXED_DATE, ChatTemplate
from zipcal.errors import InputError

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def model_dir():
    from zipcal.models import smollm2_dir

    return smollm2_dir()


@pytest.fixture(scope="module")
def hf_tok(model_dir):
    return transformers.AutoTokenizer.from_pretrained(str(model_dir))


def _conversations(k=24):
    paras = sorted(t.strip() for t in pydoc_data.topics.topics.values() if len(t.strip()) > 300)
    convs = []
    for i in range(k):
        q, a = paras[2 * i][:300], paras[2 * i + 1][:500]
        conv = [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        if i % 3 == 0:
            conv.insert(0, {"role": "system", "content": "Answer briefly."})
        convs.append(conv)
    return convs


@pytest.fixture(scope="module")
def chat_jsonl(tmp_path_factory):
    path = tmp_path_factory.mktemp("chat") / "chat.jsonl"
    with open(path, "w") as f:
        for i, conv in enumerate(_conversations()):
            f.write(json.dumps({"prompt_id": f"p{i}", "prompt": conv[-2]["content"], "messages": conv}) + "\n")
    return path


def test_messages_are_rendered_with_the_models_template(chat_jsonl, model_dir, hf_tok):
    sel = zipcal.select(chat_jsonl, 4, tokenizer=str(model_dir), seq_len=1024, unit="doc", strategy="random")
    convs = _conversations()
    for text, row in zip(sel.texts, sel.source_rows):
        want = hf_tok.apply_chat_template(convs[row], tokenize=False)
        assert want.startswith("<|im_start|>")
        assert text == want[: len(text)] and len(text) > 0.9 * min(len(want), 1000)
    # the default system prompt of SmolLM2's template is in rows without a system turn
    assert any("You are a helpful AI assistant named SmolLM" in t for t in sel.texts)


def test_parquet_list_of_structs_gives_the_same_selection(chat_jsonl, model_dir, tmp_path):
    convs = _conversations()
    pq.write_table(pa.table({"messages": convs, "n": list(range(len(convs)))}), tmp_path / "chat.parquet")
    a = zipcal.select(chat_jsonl, 4, tokenizer=str(model_dir), seq_len=256)
    b = zipcal.select(tmp_path / "chat.parquet", 4, tokenizer=str(model_dir), seq_len=256)
    assert a.texts == b.texts and list(a.source_rows) == list(b.source_rows)


def test_template_types_count_for_nothing(chat_jsonl, model_dir):
    pool = zipcal.load_pool(chat_jsonl, tokenizer=str(model_dir), seq_len=256)
    excluded = pool.excluded_types
    assert excluded is not None and len(excluded) > 5
    all_names = pool.segmenter.type_names()
    names = {all_names[int(t)] for t in excluded}
    # role names and SmolLM2's default system prompt; content words are not template types
    assert {"assistant", "user", "system", "helpful"} <= names
    assert "function" not in names
    sel = zipcal.select(pool, 4)
    offsets, types = pool.corpus.type_sets()
    first = int(sel.candidates[0])
    own = set(types[offsets[first] : offsets[first + 1]].tolist())
    assert int(sel.gains[0]) == len(own - set(excluded.tolist()))
    assert sel.stats["types_available"] == int((pool.counts > 0).sum()) - len(
        [t for t in excluded if pool.counts[t] > 0]
    )
    # zipcal-mix leaves them out as well
    mix = zipcal.select(pool, 4, strategy="zipcal-mix")
    first = int(mix.candidates[0])
    own = set(types[offsets[first] : offsets[first + 1]].tolist())
    assert int(mix.gains[0]) == len(own - set(excluded.tolist()))


def test_dates_render_the_same_every_run(model_dir, tmp_path):
    folder = tmp_path / "dated"
    shutil.copytree(model_dir, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    (folder / "chat_template.jinja").write_text(
        "{%- if not date_string is defined %}{%- set date_string = strftime_now('%d %b %Y %H:%M:%S.%f') %}"
        "{%- endif %}Today: {{ date_string }}\n{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n"
        "{% endfor %}"
    )
    t = ChatTemplate(folder)
    out = t.render([[{"role": "user", "content": "hi"}]] * 2)
    assert out[0] == out[1] == f"Today: {FIXED_DATE}\nuser: hi\n"


def test_no_template_is_a_clear_error(chat_jsonl):
    with pytest.raises(InputError, match=r"chat.jsonl: column 'messages' holds chat messages.*--chat-template"):
        zipcal.select(chat_jsonl, 2, tokenizer="gpt2", seq_len=64)


def test_a_broken_conversation_names_its_row(model_dir, tmp_path):
    path = tmp_path / "bad.jsonl"
    rows = [{"messages": c} for c in _conversations(3)]
    rows[2]["messages"][0]["content"] = None
    rows.insert(1, {"messages": [{"role": "user", "content": "fine"}, {"role": None, "content": "x"}]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError, match=r"bad.jsonl row 1: message 1 has no role"):
        zipcal.select(path, 1, tokenizer=str(model_dir), seq_len=64)


def test_cli_chat_template_option(chat_jsonl, model_dir, tmp_path):
    out = tmp_path / "calib.jsonl"
    cmd = [sys.executable, "-m", "zipcal", "select", str(chat_jsonl), "-n", "3", "--seq-len", "256", "-q"]
    tok = ["--tokenizer", str(model_dir / "tokenizer.json")]
    # a bare tokenizer.json: its folder's template is used
    r = subprocess.run(cmd + tok + ["-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    texts = [json.loads(line)["text"] for line in out.read_text().splitlines()]
    assert all(t.startswith("<|im_start|>") for t in texts)
    # a tokenizer that has no template needs --chat-template
    r = subprocess.run(cmd + ["--tokenizer", "gpt2"], capture_output=True, text=True)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--chat-template" in r.stderr
    r = subprocess.run(cmd + ["--tokenizer", "gpt2", "--chat-template", str(model_dir)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    manifest = json.loads(out.with_name("calib.jsonl.manifest.json").read_text())
    assert manifest["chat_template"]["sha256"]
    assert np.all([isinstance(t, str) for t in texts])


def test_content_parts_are_refused_with_the_line(model_dir, tmp_path):
    path = tmp_path / "parts.jsonl"
    conv = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    path.write_text(json.dumps({"messages": conv}) + "\n")
    with pytest.raises(InputError, match=r"parts.jsonl: line 1: message 0 of 'messages' has no string content"):
        zipcal.select(path, 1, tokenizer=str(model_dir), seq_len=64)
    pq.write_table(pa.table({"messages": [conv]}), tmp_path / "parts.parquet")
    with pytest.raises(InputError, match=r"parts.parquet: column 'messages' has type .*content parts"):
        zipcal.select(tmp_path / "parts.parquet", 1, tokenizer=str(model_dir), seq_len=64)


def test_line_reader_reads_chat_lines(model_dir, tmp_path, hf_tok):
    # one line that Arrow's reader rejects (a number as prompt_id after strings) sends
    # the file to the line reader, which reads the conversations too
    path = tmp_path / "mixed.jsonl"
    convs = _conversations(4)
    lines = [{"prompt_id": "a" if i else 1, "messages": c} for i, c in enumerate(convs)]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    sel = zipcal.select(path, 2, tokenizer=str(model_dir), seq_len=1024, unit="doc", strategy="random")
    for text, row in zip(sel.texts, sel.source_rows):
        assert hf_tok.apply_chat_template(convs[row], tokenize=False).startswith(text)


def test_greedy_exclude_is_checked():
    from zipcal.errors import InvalidArgumentError

    pool = zipcal.load_pool(["alpha beta gamma delta", "beta gamma epsilon zeta eta"], min_tokens=1, seq_len=16)
    order, gains, _, _ = pool.corpus.greedy(1)
    assert int(gains[0]) == 5
    beta = np.array([pool.corpus.type_names().index("beta")], dtype=np.uint32)
    order, gains, _, _ = pool.corpus.greedy(1, exclude=beta)
    assert int(gains[0]) == 4
    with pytest.raises(InvalidArgumentError, match="excluded type id"):
        pool.corpus.greedy(1, exclude=np.array([10**6], dtype=np.uint32))

"""Calibration loader and evaluation functions."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from zipcal.compress import CalibrationError, load_calibration
from zipcal.eval import EvalError, lm_eval_tasks, multiple_choice, perplexity, perplexity_stats


# ---------------------------------------------------------------- calibration
def test_tensor_and_numpy_inputs():
    ids = torch.arange(24).reshape(3, 8)
    out = load_calibration(ids)
    assert torch.equal(out["input_ids"], ids) and torch.equal(out["attention_mask"], torch.ones_like(ids))
    out = load_calibration(ids.numpy().astype(np.int32), seq_len=5, n=2)
    assert torch.equal(out["input_ids"], ids[:2, :5]) and out["input_ids"].dtype == torch.long
    with pytest.raises(CalibrationError):
        load_calibration(np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(CalibrationError):
        load_calibration(torch.zeros(2, 3, 4, dtype=torch.long))


def test_dict_input_with_mask():
    ids = torch.arange(12).reshape(2, 6)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    out = load_calibration({"input_ids": ids, "attention_mask": mask})
    assert torch.equal(out["attention_mask"], mask)
    with pytest.raises(CalibrationError, match="shape"):
        load_calibration({"input_ids": ids, "attention_mask": mask[:, :3]})
    with pytest.raises(CalibrationError, match="input_ids"):
        load_calibration({"ids": ids})


def test_selection_like_object(tiny_tokenizer):
    class Selection:  # shaped like the selection engine's result
        def __init__(self):
            self.calls = []

        def to_input_ids(self, tokenizer=None, seq_len=None, return_tensors=None):
            self.calls.append((tokenizer, seq_len, return_tensors))
            return {"input_ids": np.full((4, seq_len), 7, dtype=np.int64)}

    sel = Selection()
    out = load_calibration(sel, tokenizer=tiny_tokenizer, seq_len=16)
    assert out["input_ids"].shape == (4, 16)
    assert sel.calls == [(tiny_tokenizer, 16, "pt")]


def test_saved_selection_is_packed_into_the_selected_rows(tmp_path, tiny_tokenizer):
    from conftest import corpus_texts

    import zipcal

    # documents of mixed lengths: long ones give full windows, short ones share rows
    docs = corpus_texts(3) + [t.split(".")[0] for t in corpus_texts(80)]
    sel = zipcal.select(docs, 6, tokenizer=tiny_tokenizer, seq_len=64, strategy="random", seed=1)
    assert len(sel) > 6  # some candidates are shorter than a row
    for name in ("sel.parquet", "sel.jsonl"):
        path = tmp_path / name
        sel.save(path)
        out = load_calibration(path, tokenizer=tiny_tokenizer, seq_len=64, n=6)
        assert out["input_ids"].shape == (6, 64) and bool(out["attention_mask"].all())
        # the same rows the selection packs itself, but for window starts re-encoded
        # from their text (a window may start inside a word)
        want = sel.to_input_ids(return_tensors="pt")["input_ids"]
        same = (out["input_ids"] == want).float().mean().item()
        assert same > 0.9, same
    # the Parquet file says how many rows it was made for
    out = load_calibration(tmp_path / "sel.parquet", tokenizer=tiny_tokenizer)
    assert out["input_ids"].shape == (6, 64)


def _direct_tokenize(tok, texts, seq_len):
    rows = [tok(t)["input_ids"][:seq_len] for t in texts]
    return rows


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_text_files(fmt, tmp_path, tiny_tokenizer, doc_texts):
    texts = doc_texts[:6] + ["short one"]
    path = tmp_path / f"calib.{fmt}"
    if fmt == "parquet":
        pq.write_table(pa.table({"text": texts, "score": list(range(len(texts)))}), path)
    else:
        path.write_text("".join(json.dumps({"text": t, "i": i}) + "\n" for i, t in enumerate(texts)))
    out = load_calibration(str(path), tokenizer=tiny_tokenizer, seq_len=64)
    rows = _direct_tokenize(tiny_tokenizer, texts, 64)
    assert out["input_ids"].shape == (len(texts), 64)
    for i, r in enumerate(rows):
        assert out["input_ids"][i, : len(r)].tolist() == r
        assert out["attention_mask"][i].tolist() == [1] * len(r) + [0] * (64 - len(r))
        assert bool((out["input_ids"][i, len(r) :] == tiny_tokenizer.pad_token_id).all())
    assert out["attention_mask"][-1].sum() < 64
    assert load_calibration(path, tokenizer=tiny_tokenizer, seq_len=64, n=3)["input_ids"].shape[0] == 3


def test_text_file_errors(tmp_path, tiny_tokenizer):
    p = tmp_path / "c.parquet"
    pq.write_table(pa.table({"body": ["a b c"]}), p)
    with pytest.raises(CalibrationError, match="'text'"):
        load_calibration(p, tokenizer=tiny_tokenizer)
    with pytest.raises(CalibrationError, match="not found"):
        load_calibration(tmp_path / "missing.jsonl", tokenizer=tiny_tokenizer)
    with pytest.raises(CalibrationError, match="tokenizer"):
        pq.write_table(pa.table({"text": ["a b c"]}), p)
        load_calibration(p)


# ---------------------------------------------------------------- perplexity
def _direct_ppl(model, ids, seq_len):
    nll, n = 0.0, 0
    with torch.no_grad():
        for s in range(0, (ids.numel() // seq_len) * seq_len, seq_len):
            w = ids[s : s + seq_len]
            logp = torch.log_softmax(model(w[None]).logits[0].double(), -1)
            for t in range(seq_len - 1):
                nll -= float(logp[t, w[t + 1]])
                n += 1
    return math.exp(nll / n), n


def test_perplexity_protocol(tmp_path, make_model, tiny_tokenizer, doc_texts):
    model = make_model("llama", vocab_size=len(tiny_tokenizer))
    text = "\n\n".join(doc_texts[:5])
    path = tmp_path / "test.txt"
    path.write_text(text)
    ids = tiny_tokenizer(text, return_tensors="pt")["input_ids"][0]
    want, n = _direct_ppl(model, ids, 32)
    stats = perplexity_stats(model, tiny_tokenizer, path, seq_len=32)
    assert stats["windows"] == ids.numel() // 32 and stats["tokens"] == n
    assert stats["ppl"] == pytest.approx(want, rel=1e-4)
    # list of documents joined with blank lines == the joined text
    assert perplexity(model, tiny_tokenizer, doc_texts[:5], seq_len=32) == pytest.approx(stats["ppl"], rel=1e-6)
    one = perplexity_stats(model, tiny_tokenizer, str(path), seq_len=32, max_windows=1, batch_size=4)
    assert one["windows"] == 1 and one["tokens"] == 31
    with pytest.raises(EvalError, match="not found"):
        perplexity(model, tiny_tokenizer, str(tmp_path / "nope.txt"))
    with pytest.raises(EvalError, match="fewer than one window"):
        perplexity(model, tiny_tokenizer, "tiny text", seq_len=64)


# ---------------------------------------------------------------- multiple choice
def test_multiple_choice_matches_direct_scoring(tmp_path, make_model, tiny_tokenizer):
    model = make_model("gpt2", vocab_size=len(tiny_tokenizer))
    items = [
        {"context": "The function returns", "choices": ["a list", "None at all", "x"], "label": 0},
        {"context": "Raise an exception when", "choices": ["the file is missing", "yes"], "label": 1},
        {"context": "Import the module and", "choices": ["call it", "then print the value"], "label": 1},
    ]
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps(it) + "\n" for it in items))
    res = multiple_choice(model, tiny_tokenizer, path)
    acc = acc_norm = 0
    with torch.no_grad():
        for it in items:
            ctx = tiny_tokenizer(it["context"])["input_ids"]
            lls, norms = [], []
            for ch in it["choices"]:
                whole = tiny_tokenizer(it["context"] + " " + ch)["input_ids"]
                logp = torch.log_softmax(model(torch.tensor([whole])).logits[0], -1)
                ll = sum(float(logp[t - 1, whole[t]]) for t in range(len(ctx), len(whole)))
                lls.append(ll)
                norms.append(ll / len(" " + ch))
            acc += int(int(np.argmax(lls)) == it["label"])
            acc_norm += int(int(np.argmax(norms)) == it["label"])
    assert res == {"acc": acc / 3, "acc_norm": acc_norm / 3, "n": 3}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"context": "x", "choices": ["a", "b"], "label": 5}) + "\n")
    with pytest.raises(EvalError, match="label"):
        multiple_choice(model, tiny_tokenizer, bad)


def test_lm_eval_adapter_needs_lm_eval(make_model, tiny_tokenizer):
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install lm-eval"):
            lm_eval_tasks(make_model("llama"), tiny_tokenizer, ["hellaswag"])
    else:  # pragma: no cover
        pytest.skip("lm-eval is installed; the adapter is exercised by lm-eval's own tasks")

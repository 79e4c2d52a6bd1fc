"""MoE expert coverage (``zipcal.moe``, ``zipcal experts``) on tiny random MoE models."""

from __future__ import annotations

import json

import numpy as np
import pytest

import zipcal
from zipcal.errors import InvalidArgumentError
from zipcal.moe import ExpertCoverage, cover_experts, expert_coverage, find_routers

torch = pytest.importorskip("torch")

from support.compress_cli import run_cli, save_model  # noqa: E402
from support.moe import VOCAB, kill_expert, moe_model, padded_batch  # noqa: E402


def reference_counts(model, batch, k: int = 2) -> np.ndarray:
    """Counts from the model's own recorded router logits (full forward), masked."""
    with torch.no_grad():
        out = model(**batch, output_router_logits=True, use_cache=False)
    keep = batch["attention_mask"].reshape(-1).bool()
    rows = []
    for logits in out.router_logits:
        idx = torch.topk(torch.softmax(logits.float(), -1), k, dim=-1).indices
        rows.append(torch.bincount(idx[keep].reshape(-1), minlength=logits.shape[-1]).numpy())
    return np.stack(rows)


@pytest.mark.parametrize("kind", ["mixtral", "qwen2_moe", "qwen3_moe"])
def test_counts_match_router_logits(kind):
    model = moe_model(kind, experts=8)
    batch, lengths = padded_batch()
    cov = expert_coverage(model, batch, device="cpu")
    assert cov.layers == ["model.layers.0.mlp.gate", "model.layers.1.mlp.gate"]
    assert cov.counts.dtype == np.int64 and cov.counts.shape == (2, 8)
    assert cov.top_k == 2 and cov.rows == 5 and cov.tokens == sum(lengths)
    assert (cov.counts.sum(axis=1) == cov.tokens * 2).all()
    np.testing.assert_array_equal(cov.counts, reference_counts(model, batch))
    assert cov.min_tokens == 32  # default: the hidden size


def test_padding_is_not_counted():
    model = moe_model("mixtral")
    batch, lengths = padded_batch(seed=2)
    padded = expert_coverage(model, batch, device="cpu", batch_size=2)
    rows = [batch["input_ids"][i, :n] for i, n in enumerate(lengths)]
    one_by_one = sum(expert_coverage(model, {"input_ids": r[None]}, device="cpu").counts for r in rows)
    np.testing.assert_array_equal(padded.counts, one_by_one)
    ragged = expert_coverage(model, [r.tolist() for r in rows], device="cpu")  # list of 1-D token lists
    np.testing.assert_array_equal(ragged.counts, one_by_one)
    # counting the pad positions too would differ
    unmasked = expert_coverage(model, {"input_ids": batch["input_ids"]}, device="cpu")
    assert unmasked.tokens == batch["input_ids"].numel() != padded.tokens
    assert unmasked.counts.sum() > padded.counts.sum()


def test_unreached_expert_is_reported():
    model = moe_model("mixtral", experts=6)
    kill_expert(model, layer=1, dead=5)
    batch, _ = padded_batch()
    cov = expert_coverage(model, batch, device="cpu", min_tokens=10)
    assert ("model.layers.1.mlp.gate", 5) in cov.unreached()
    assert all(layer == "model.layers.1.mlp.gate" for layer, _ in cov.unreached())
    assert set(cov.unreached()) <= set(cov.below())
    d = json.loads(json.dumps(cov.to_dict()))
    assert {"layer": "model.layers.1.mlp.gate", "expert": 5} in d["unreached"]
    text = str(cov)
    assert "model.layers.1.mlp.gate" in text and "5 (0)" in text


class _LinearGateBlock(torch.nn.Module):
    """The transformers 4 layout: ``gate`` is a bare ``nn.Linear`` returning logits."""

    def __init__(self, hidden: int, experts: int, k: int) -> None:
        super().__init__()
        self.k = k
        self.gate = torch.nn.Linear(hidden, experts, bias=False)
        self.experts = torch.nn.ModuleList(torch.nn.Linear(hidden, hidden) for _ in range(experts))

    def forward(self, x):
        flat = x.reshape(-1, x.shape[-1])
        w, idx = torch.topk(torch.softmax(self.gate(flat), -1), self.k, dim=-1)
        out = torch.zeros_like(flat)
        for j in range(self.k):
            for e, expert in enumerate(self.experts):
                sel = idx[:, j] == e
                out[sel] += w[sel, j, None] * expert(flat[sel])
        return x + out.reshape(x.shape)


class _ToyMoE(torch.nn.Module):
    def __init__(self, hidden: int = 16, experts: int = 5) -> None:
        super().__init__()
        from types import SimpleNamespace

        self.config = SimpleNamespace(hidden_size=hidden, num_local_experts=experts, num_experts_per_tok=2)
        self.model = torch.nn.Module()
        self.model.embed = torch.nn.Embedding(VOCAB, hidden)
        self.model.layers = torch.nn.ModuleList(_LinearGateBlock(hidden, experts, 2) for _ in range(3))

    def forward(self, input_ids, attention_mask=None, use_cache=None):
        h = self.model.embed(input_ids)
        for layer in self.model.layers:
            h = layer(h)
        return h


def test_logits_only_router_gets_softmax_top_k():
    torch.manual_seed(4)
    model = _ToyMoE().eval()
    batch, _ = padded_batch(seed=5)
    cov = expert_coverage(model, batch, device="cpu", batch_size=3)
    assert cov.layers == [f"model.layers.{i}.gate" for i in range(3)] and cov.top_k == 2
    keep = batch["attention_mask"].reshape(-1).bool()
    expected = []
    with torch.no_grad():
        h = model.model.embed(batch["input_ids"])
        for layer in model.model.layers:
            idx = torch.topk(layer.gate(h).reshape(-1, 5), 2, dim=-1).indices
            expected.append(torch.bincount(idx[keep].reshape(-1), minlength=5).numpy())
            h = layer(h)
    np.testing.assert_array_equal(cov.counts, np.stack(expected))
    assert cov.min_tokens == 16


def test_report_helpers():
    cov = ExpertCoverage(
        layers=["a.gate", "b.gate"],
        counts=np.array([[0, 5, 40, 35], [20, 20, 20, 20]], dtype=np.int64),
        top_k=2,
        tokens=40,
        rows=2,
        min_tokens=30,
    )
    assert cov.num_experts == 4
    assert cov.unreached() == [("a.gate", 0)]
    assert cov.below() == [("a.gate", 0), ("a.gate", 1), ("b.gate", 0), ("b.gate", 1), ("b.gate", 2), ("b.gate", 3)]
    assert cov.below(6) == [("a.gate", 0), ("a.gate", 1)]
    d = cov.to_dict()
    assert d["per_layer"][0] == {
        "layer": "a.gate",
        "min": 0,
        "median": 20.0,
        "max": 40,
        "unreached": [0],
        "below_min_tokens": [0, 1],
    }
    assert d["below_min_tokens"][1] == {"layer": "a.gate", "expert": 1, "tokens": 5}
    lines = cov.format().splitlines()
    assert lines[2].split() == ["a.gate", "0", "20", "40", "1", "2"]
    assert "1 of 8 experts unreached, 6 reached by fewer than 30 tokens" in lines


def test_dense_model_is_refused(make_model):
    with pytest.raises(InvalidArgumentError, match="no MoE layers"):
        expert_coverage(make_model("llama"), padded_batch()[0], device="cpu")
    assert find_routers(make_model("llama")) == []


# ------------------------------------------------------------------ CLI


def test_cli_exit_status_and_json(tmp_path, tiny_tokenizer, calib_file, capsys):
    vocab = len(tiny_tokenizer)
    healthy = save_model(moe_model("qwen2_moe", vocab, experts=4), tiny_tokenizer, tmp_path / "ok")
    argv = ["experts", str(healthy), "--calib", str(calib_file), "--seq-len", "48", "--device", "cpu", "-q"]
    assert run_cli(argv + ["--json", "--min-tokens", "5"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["unreached"] == [] and report["min_tokens"] == 5 and report["top_k"] == 2
    assert [sum(r) for r in report["counts"]] == [report["tokens"] * 2] * 2

    # (not Mixtral here: transformers loads a Mixtral folder's tokenizer through mistral-common
    # when that is installed, and the test environment's copy lacks its tiktoken dependency)
    broken = moe_model("qwen3_moe", vocab, experts=6)
    kill_expert(broken, layer=0, dead=2)
    broken_dir = save_model(broken, tiny_tokenizer, tmp_path / "dead")
    assert run_cli(["experts", str(broken_dir), "--calib", str(calib_file), "--seq-len", "48", "-q"]) == 1
    out = capsys.readouterr().out
    assert "model.layers.0.mlp.gate: expert (tokens) 2 (0)" in out
    assert "MoE layers x 6 experts, top-2" in out


def test_cli_user_errors(tmp_path, tiny_tokenizer, make_model, calib_file, capsys):
    dense = save_model(make_model("llama", vocab_size=len(tiny_tokenizer)), tiny_tokenizer, tmp_path / "dense")
    assert run_cli(["experts", str(dense), "--calib", str(calib_file), "-q"]) == 2
    err = [l for l in capsys.readouterr().err.splitlines() if l.startswith("zipcal experts")]
    assert len(err) == 1 and err[0].startswith("zipcal experts: error:") and "no MoE layers" in err[0]
    moe = save_model(moe_model("qwen2_moe", len(tiny_tokenizer)), tiny_tokenizer, tmp_path / "moe")
    assert run_cli(["experts", str(moe), "--calib", str(tmp_path / "missing.parquet"), "-q"]) == 2
    assert "calibration file not found" in capsys.readouterr().err
    assert run_cli(["experts", str(moe), "--calib", str(calib_file), "--min-tokens", "0", "-q"]) == 2
    assert "min_tokens must be a positive integer" in capsys.readouterr().err


# ------------------------------------------------------------------ cover_experts


def test_cover_experts_adds_rows_for_short_experts(tiny_tokenizer, doc_texts):
    model = moe_model("mixtral", len(tiny_tokenizer), experts=8, seed=3)
    sel = zipcal.select(doc_texts, 1, tokenizer=tiny_tokenizer, seq_len=32, strategy="random", seed=0)
    floor = 20
    cover = cover_experts(sel, model, tokenizer=tiny_tokenizer, min_tokens=floor, max_candidates=24, device="cpu")
    before = expert_coverage(model, sel, tokenizer=tiny_tokenizer, seq_len=32, min_tokens=floor, device="cpu")
    np.testing.assert_array_equal(cover.before.counts, before.counts)
    assert before.below() and len(cover.candidates) == len(cover.rows) > 0
    assert not set(cover.candidates.tolist()) & set(sel.candidates.tolist())
    assert cover.scored == 24
    added = expert_coverage(model, cover.rows, device="cpu").counts
    np.testing.assert_array_equal(cover.after.counts, before.counts + added)
    assert len(cover.after.below()) < len(before.below())
    assert cover.after.rows == before.rows + len(cover.rows)

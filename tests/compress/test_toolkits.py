"""The hand-off checked from the toolkits' side: llm-compressor's ``oneshot`` and
auto-round run on a tiny random Llama, and GPTQModel's own data preparation runs
on our rows; hooks on the model record the tokens each toolkit feeds it.

These tests need the toolkits, installed next to our torch by
``scripts/toolkits.sh``; ``scripts/test.sh`` runs them in their own step with
``ZIPCAL_TOOLKITS=1`` (tests/compress/conftest.py leaves this file out otherwise).
A missing toolkit is then an error, not a skip.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from llmcompressor import oneshot
from llmcompressor.modifiers.pruning import WandaPruningModifier

import zipcal
from zipcal import handoff

SEQ = 64


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_tokenizer):
    from conftest import tiny_model

    path = tmp_path_factory.mktemp("tiny-llama")
    tiny_model("llama").save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def sel(tiny_tokenizer, doc_texts):
    # a pool too small for the last row: rows of 64 tokens and one shorter
    docs = doc_texts[:2] + [t.split(".")[0][:80] for t in doc_texts[:12]]
    return zipcal.select(docs, 12, tokenizer=tiny_tokenizer, seq_len=SEQ, strategy="random", seed=3, unit="doc")


@pytest.fixture(scope="module")
def tied_model_dir(tmp_path_factory, tiny_tokenizer):
    """The same tiny Llama with ``lm_head`` tied to the input embeddings (as SmolLM2's)."""
    from conftest import tiny_model
    from transformers import LlamaForCausalLM

    config = tiny_model("llama").config
    config.tie_word_embeddings = True
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-llama-tied")
    LlamaForCausalLM(config).save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


def _load(model_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dir).eval()


class Recorder:
    """Token ids entering the embedding, and positions entering layer 0's q_proj."""

    def __init__(self, model):
        self.ids: list = []
        self.positions = 0
        model.model.embed_tokens.register_forward_pre_hook(lambda m, a: self._ids(a[0]))
        q = model.model.layers[0].self_attn.q_proj
        q.register_forward_pre_hook(lambda m, a: self._count(a[0]))

    # llm-compressor first traces the model with meta tensors: those carry no data
    def _ids(self, x):
        if not x.is_meta:
            self.ids.append(x.detach().clone())

    def _count(self, x):
        if not x.is_meta:
            self.positions += int(x.shape[0] * x.shape[1])

    def rows(self, n):
        """The first ``n`` rows that entered the model (one calibration pass)."""
        out = [r for batch in self.ids for r in batch]
        return out[:n]


def _wanda(**kw):
    return WandaPruningModifier(sparsity=0.5, targets=["Linear"], **kw)


def test_oneshot_calibrates_on_exactly_the_selected_rows(model_dir, tiny_tokenizer, sel):
    rows = handoff.calibration_rows(sel)
    assert min(len(r) for r in rows) < SEQ  # a short row, which padding would fill
    model = _load(model_dir)
    rec = Recorder(model)
    loader = handoff.to_llmcompressor(sel)
    # settings that would resample, sort, cut or pad a Dataset do not touch the loader
    oneshot(
        model=model,
        recipe=_wanda(ignore=["re:.*lm_head"]),
        dataset=loader,
        processor=tiny_tokenizer,
        num_calibration_samples=3,
        batch_size=4,
        max_seq_length=16,
    )
    seen = rec.rows(len(rows))
    assert len(seen) == len(rows)
    for got, want in zip(seen, rows):
        assert torch.equal(got, torch.as_tensor(want))  # same tokens, same order, no padding
    # every position that reached the first layer's inputs was a real token
    passes = rec.positions / sum(len(r) for r in rows)
    assert passes == int(passes) >= 1
    assert loader.plan.exact


def test_a_padded_dataset_is_calibrated_as_inspect_predicts(model_dir, tiny_tokenizer, sel):
    ds = sel.to_dataset(padded=True)  # what to_dataset() handed over before 0.3
    settings = dict(shuffle_calibration_samples=False, batch_size=2)
    plan = handoff.inspect_llmcompressor(ds, **settings, warn=False)
    assert plan.pad_tokens > 0 and plan.rows_kept == len(ds)
    model = _load(model_dir)
    rec = Recorder(model)
    oneshot(model=model, recipe=_wanda(ignore=["re:.*lm_head"]), dataset=ds, processor=tiny_tokenizer, **settings)
    seen = rec.rows(plan.rows_kept)
    assert len(seen) == plan.rows_kept
    # the hooks saw the predicted padding tokens besides the real ones
    pad = sel.stats["packing"]["pad_token_id"]
    real = [np.asarray(i)[np.asarray(m) == 1] for i, m in zip(ds["input_ids"], ds["attention_mask"])]
    n_pad = sum(int((r == pad).sum()) for r in seen) - sum(int((r == pad).sum()) for r in real)
    assert n_pad == plan.pad_tokens
    assert sum(r.numel() for r in seen) == plan.tokens_kept + plan.pad_tokens


def test_tied_lm_head_needs_a_regex_ignore(tied_model_dir, tiny_tokenizer, sel):
    """docs/toolkits.md: with tied embeddings, ``ignore=["lm_head"]`` does not
    protect ``lm_head`` in llm-compressor 0.14 (nor the embedding tied to it);
    ``ignore=["re:.*lm_head"]`` does."""
    outcomes = {}
    for ignore in ([], ["lm_head"], ["re:.*lm_head"]):
        model = _load(tied_model_dir)
        assert model.lm_head.weight is model.model.embed_tokens.weight
        before = model.lm_head.weight.detach().clone()
        oneshot(
            model=model, recipe=_wanda(ignore=ignore), dataset=handoff.to_llmcompressor(sel), processor=tiny_tokenizer
        )
        outcomes[tuple(ignore)] = torch.equal(before, model.lm_head.weight.detach())
    assert outcomes == {(): False, ("lm_head",): False, ("re:.*lm_head",): True}


def test_w4a16_groups_must_divide_the_input_width(model_dir, tiny_tokenizer):
    """docs/toolkits.md: llm-compressor 0.14's W4A16 preset (groups of 128) fails on a
    model whose linear layers have an input width that 128 does not divide, as
    SmolLM2-135M's 576; here the tiny Llama's 64."""
    from llmcompressor.modifiers.quantization import QuantizationModifier

    model = _load(model_dir)
    assert model.config.hidden_size % 128 != 0
    recipe = QuantizationModifier(targets="Linear", scheme="W4A16", ignore=["re:.*lm_head"])
    with pytest.raises(RuntimeError, match="128"):
        oneshot(model=model, recipe=recipe, processor=tiny_tokenizer)


def test_autoround_keeps_every_full_row(model_dir, tiny_tokenizer, sel):
    from auto_round import AutoRound

    rows = handoff.calibration_rows(sel)
    examples = handoff.to_autoround(sel)
    full = [r for r in rows if len(r) == SEQ]
    assert examples.plan.rows_kept == len(full) < len(rows)
    model = _load(model_dir)
    rec = Recorder(model)
    ar = AutoRound(
        model,
        tiny_tokenizer,
        dataset=examples,
        seqlen=examples.seqlen,
        nsamples=examples.nsamples,
        iters=1,
        bits=4,
        group_size=32,
        batch_size=1,
    )
    ar.quantize()
    seen = rec.rows(len(full))
    assert len(seen) == len(full)
    assert all(torch.equal(a, torch.as_tensor(b)) for a, b in zip(seen, full))


def test_gptqmodel_prepares_our_rows_unchanged(tiny_tokenizer, sel):
    from types import SimpleNamespace

    from gptqmodel.utils.calibration import prepare_calibration_dataset

    rows = handoff.calibration_rows(sel)
    examples = handoff.to_gptqmodel(sel)
    stub = SimpleNamespace(tokenizer=tiny_tokenizer, support_batch_quantize=True, model=None)
    batches = prepare_calibration_dataset(stub, examples, calibration_dataset_sort=None, batch_size=1)
    assert len(batches) == examples.plan.rows_kept == len(rows)
    for b, r in zip(batches, rows):
        assert torch.equal(b["input_ids"][0], torch.as_tensor(r)) and bool(b["attention_mask"].all())
    # its default sort only reorders; a row of 10 tokens or fewer is removed, as the plan says
    sorted_batches = prepare_calibration_dataset(stub, examples, calibration_dataset_sort="desc", batch_size=1)
    assert sorted(len(b["input_ids"][0]) for b in sorted_batches) == sorted(len(r) for r in rows)
    # batches of three after its default sort: the padding the plan predicts
    batched = prepare_calibration_dataset(stub, examples, calibration_dataset_sort="desc", batch_size=3)
    padded = sum(int((b["attention_mask"] == 0).sum()) for b in batched)
    plan = handoff.inspect_rows(rows, "gptqmodel", batch_size=3, calibration_sort="desc")
    assert padded == plan.pad_tokens > 0
    tiny = handoff.CalibrationRows(list(examples) + [{"input_ids": [[5] * 8], "attention_mask": [[1] * 8]}])
    kept = prepare_calibration_dataset(stub, tiny, batch_size=1)
    plan = handoff.inspect_rows([np.asarray(e["input_ids"][0]) for e in tiny], "gptqmodel")
    assert len(kept) == plan.rows_kept == len(rows)


@pytest.mark.parametrize("actorder", ["static", None])
def test_gptq_static_groups_match_llmcompressor(actorder):
    """Our GPTQ with static group scales against llm-compressor's ``quantize_weight``
    on the same weights and Hessian (docs/gptq.md)."""
    from compressed_tensors.quantization import QuantizationArgs
    from compressed_tensors.quantization.utils import calculate_qparams
    from llmcompressor.modifiers.gptq.gptq_quantize import quantize_weight
    from test_gptq_static import _problem

    from zipcal.compress import kernels as K

    bits, gs, blocksize, damp = 4, 32, 128, 0.01
    w, h = _problem(rows=48, cols=256, seed=4)
    h[:, 7] = h[7, :] = 0  # a dead input
    for symmetric in (True, False):
        qa = QuantizationArgs(num_bits=bits, strategy="group", group_size=gs, symmetric=symmetric, actorder=actorder)
        wg = w.reshape(w.shape[0], -1, gs)
        scale, zp = calculate_qparams(wg.amin(-1), wg.amax(-1), qa)  # their observer's min-max grid
        theirs = quantize_weight(
            w[None].clone(), h[None].clone(), scale[None], zp[None], None, qa, blocksize=blocksize, percdamp=damp
        )[0][0]
        ours, scales, *_ = K.quantize_gptq(
            w, h, bits, gs, act_order=actorder or "none", symmetric=symmetric, blocksize=blocksize,
            percdamp=damp, static_groups=True,
        )  # fmt: skip
        torch.testing.assert_close(scales, scale.float(), rtol=1e-6, atol=0)
        same_code = (ours - theirs).abs() < 0.5 * scales.repeat_interleave(gs, 1)
        # measured: 100% identical (bit-exact); allow a rare float32 rounding tie
        assert float(same_code.float().mean()) >= 0.995, (symmetric, float(same_code.float().mean()))

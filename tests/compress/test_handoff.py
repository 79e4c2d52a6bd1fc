"""Hand-off adapters (zipcal.handoff): the rows each toolkit is given are the
selection's rows, unpadded and in order, and the plans predict what a toolkit's
settings would do to a dataset. The toolkits themselves run in tests/toolkits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import zipcal
from zipcal import handoff
from zipcal.errors import InvalidArgumentError

datasets = pytest.importorskip("datasets")


@pytest.fixture(scope="module")
def sel(tiny_tokenizer):
    from conftest import corpus_texts

    # long documents fill rows of their own; short ones share rows, and the pool
    # runs out before the last row is full
    docs = corpus_texts(2) + [t.split(".")[0][:80] for t in corpus_texts(12)]
    return zipcal.select(docs, 12, tokenizer=tiny_tokenizer, seq_len=64, strategy="random", seed=3, unit="doc")


def _unpadded(batch):
    ids, mask = batch["input_ids"], batch["attention_mask"]
    return [np.asarray(r)[np.asarray(m) == 1] for r, m in zip(ids, mask)]


def test_rows_are_the_packed_rows_without_padding(sel):
    want = _unpadded(sel.to_input_ids(return_tensors="np"))
    rows = handoff.calibration_rows(sel)
    assert len(rows) == len(want) > 1
    for r, w in zip(rows, want):
        assert np.array_equal(r, w)
    lengths = [len(r) for r in rows]
    assert max(lengths) == 64 and min(lengths) < 64  # the test needs a short row


def test_llmcompressor_loader_yields_the_rows_in_order(sel):
    rows = handoff.calibration_rows(sel)
    loader = handoff.to_llmcompressor(sel)
    seen = list(loader)
    assert len(seen) == len(rows)
    for batch, r in zip(seen, rows):
        assert batch["input_ids"].shape == (1, len(r))
        assert torch.equal(batch["input_ids"][0], torch.as_tensor(r))
        assert bool(batch["attention_mask"].all())
    # iterating twice gives the same order (nothing is shuffled)
    again = [b["input_ids"] for b in loader]
    assert all(torch.equal(a, b["input_ids"]) for a, b in zip(again, seen))
    plan = loader.plan
    assert plan.exact and plan.pad_tokens == 0
    assert plan.tokens_kept == sum(len(r) for r in rows)
    assert handoff.inspect_llmcompressor(loader, num_calibration_samples=2, batch_size=4) is plan


def test_to_dataset_is_unpadded_unless_asked(sel):
    rows = handoff.calibration_rows(sel)
    ds = sel.to_dataset()
    assert [len(r) for r in ds["input_ids"]] == [len(r) for r in rows]
    assert all(all(m) for m in ds["attention_mask"])
    assert all(np.array_equal(a, b) for a, b in zip(ds["input_ids"], rows))
    padded = sel.to_dataset(padded=True)
    assert {len(r) for r in padded["input_ids"]} == {64}
    assert sum(len(m) - sum(m) for m in padded["attention_mask"]) == len(rows) * 64 - sum(len(r) for r in rows)


def _dataset(lengths, pad_to=None):
    rng = np.random.default_rng(0)
    ids, mask = [], []
    for n in lengths:
        width = pad_to or n
        ids.append(list(rng.integers(2, 300, width)))
        mask.append([1] * n + [0] * (width - n))
    return datasets.Dataset.from_dict({"input_ids": ids, "attention_mask": mask})


def test_inspect_counts_padding_in_padded_rows(sel):
    plan = handoff.inspect_llmcompressor(sel.to_dataset(padded=True), warn=False)
    rows = handoff.calibration_rows(sel)
    real = sum(len(r) for r in rows)
    assert plan.rows_kept == len(rows) and plan.tokens_kept == real
    assert plan.pad_tokens == len(rows) * 64 - real > 0
    assert not plan.exact and any("padding" in w for w in plan.warnings)
    # the selection itself is handed over unpadded: exact up to order
    plan = handoff.inspect_llmcompressor(sel, warn=False)
    assert plan.exact and plan.warnings == []


def test_inspect_predicts_sorting_and_truncation():
    ds = _dataset([5, 3, 4, 8, 2])
    # no shuffling: sorted longest first, the 3 longest kept
    plan = handoff.inspect_llmcompressor(ds, num_calibration_samples=3, shuffle_calibration_samples=False, warn=False)
    assert (plan.rows_kept, plan.tokens_kept, plan.pad_tokens) == (3, 8 + 5 + 4, 0)
    assert any("keeps 3 of 5 rows" in w for w in plan.warnings)
    # batches of two sorted rows are cut to the shorter one: (8,5) (4,3) (2)
    plan = handoff.inspect_llmcompressor(ds, shuffle_calibration_samples=False, batch_size=2, warn=False)
    assert plan.tokens_kept == 5 + 5 + 3 + 3 + 2
    assert any("drops 4 real tokens" in w for w in plan.warnings)
    # the padding collator pads each batch to its longest row instead
    plan = handoff.inspect_llmcompressor(
        ds, shuffle_calibration_samples=False, batch_size=2, data_collator="padding", warn=False
    )
    assert (plan.tokens_kept, plan.pad_tokens) == (22, 3 + 1)
    # max_seq_length cuts rows with the truncation collator
    plan = handoff.inspect_llmcompressor(ds, max_seq_length=4, warn=False)
    assert plan.tokens_kept == 4 + 3 + 4 + 4 + 2


def test_inspect_says_when_an_unseeded_draw_decides():
    ds = _dataset([5, 3, 4, 8, 2])
    plan = handoff.inspect_llmcompressor(ds, num_calibration_samples=3, warn=False)
    assert plan.rows_kept == 3 and plan.tokens_kept is None
    assert any("unseeded" in w for w in plan.warnings)
    assert "? of 22 real tokens" in str(plan)
    plan = handoff.inspect_llmcompressor(ds, batch_size=2, warn=False)
    assert plan.tokens_kept is None and any("batch_size=2" in w for w in plan.warnings)
    # all rows, one at a time: the draw only reorders
    plan = handoff.inspect_llmcompressor(ds, warn=False)
    assert plan.exact and "shuffled" in plan.order


def test_inspect_rejects_what_it_cannot_read():
    with pytest.raises(InvalidArgumentError, match="input_ids"):
        handoff.inspect_llmcompressor(datasets.Dataset.from_dict({"text": ["a"]}))
    with pytest.raises(InvalidArgumentError, match="data_collator"):
        handoff.inspect_llmcompressor(_dataset([3]), data_collator="zip")
    plan = handoff.inspect_llmcompressor(_dataset([3]), data_collator=lambda x: x, warn=False)
    assert plan.tokens_kept is None


def test_autoround_rows_and_short_row_warning(sel, caplog):
    rows = handoff.calibration_rows(sel)
    with caplog.at_level("WARNING", logger="zipcal.handoff"):
        out = handoff.to_autoround(sel)
    assert out.seqlen == 64 and out.nsamples == len(rows) == len(out)
    for ex, r in zip(out, rows):
        assert torch.equal(ex["input_ids"][0], torch.as_tensor(r))
    short = [r for r in rows if len(r) < 64]
    assert out.plan.rows_kept == len(rows) - len(short)
    assert out.plan.tokens_kept == sum(len(r) for r in rows if len(r) == 64)
    assert "shorter than seqlen=64" in caplog.text
    plan = handoff.inspect_rows(rows, "auto-round", seqlen=64, nsamples=2)
    assert plan.rows_kept == 2


def test_gptqmodel_rows_and_min_length():
    rows = [np.arange(2, 40), np.arange(2, 12), np.arange(2, 14)]  # 38, 10, 12 tokens
    plan = handoff.inspect_rows(rows, "gptqmodel")
    assert (plan.rows_kept, plan.tokens_kept) == (2, 38 + 12)
    assert "10 tokens or fewer" in plan.warnings[0]
    assert plan.order == "as selected" and plan.pad_tokens == 0
    # quantize()'s default sort with batches of two: (38, 12) padded to 38
    plan = handoff.inspect_rows(rows, "gptqmodel", batch_size=2, calibration_sort="desc")
    assert plan.pad_tokens == 38 - 12 and "longest first" in plan.order
    assert any("batch_size=2" in w for w in plan.warnings)
    plan = handoff.inspect_rows(rows, "gptqmodel", batch_size=2, calibration_sort="shuffle")
    assert plan.pad_tokens is None
    with pytest.raises(InvalidArgumentError):
        handoff.inspect_rows(rows, "vllm")
    with pytest.raises(InvalidArgumentError):
        handoff.inspect_rows(rows, "gptqmodel", calibration_sort="random")


def test_gptqmodel_examples(sel):
    rows = handoff.calibration_rows(sel)
    out = handoff.to_gptqmodel(sel)
    assert [ex["input_ids"][0] for ex in out] == [r.tolist() for r in rows]
    assert all(ex["attention_mask"][0] == [1] * len(r) for ex, r in zip(out, rows))

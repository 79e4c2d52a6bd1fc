"""Integration on the offline SmolLM2-135M (Llama architecture, 30 layers) on CPU.

Run with ``-s`` to see the perplexities. Calibration: 32 x 512 tokens from
WikiText-2 valid; evaluation: the first 8 windows of 512 tokens of WikiText-2 test.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest
import torch

from zipcal.compress import prune, quantize
from zipcal.eval import perplexity_stats

WIKITEXT_DIR = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "wikitext-2").resolve()

pytestmark = pytest.mark.slow

SEQ_LEN = 512
N_CALIB = 32
EVAL_WINDOWS = 8
EVAL_CHARS = 80_000


@pytest.fixture(scope="module")
def smollm2():
    from zipcal.models import ModelNotFoundError, load_smollm2

    torch.set_num_threads(2)
    try:
        model, tok = load_smollm2()
    except ModelNotFoundError as exc:
        pytest.fail(f"SmolLM2 integration tests need the offline model: {exc}", pytrace=False)
    return model, tok


@pytest.fixture(scope="module")
def wikitext():
    test, valid = WIKITEXT_DIR / "test.txt", WIKITEXT_DIR / "valid.txt"
    if not (test.is_file() and valid.is_file()):
        pytest.skip(f"WikiText-2 text files not found under {WIKITEXT_DIR}")
    return test.read_text(encoding="utf-8")[:EVAL_CHARS], valid.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def calib(smollm2, wikitext):
    _, tok = smollm2
    ids = tok(wikitext[1], return_tensors="pt")["input_ids"][0]
    g = torch.Generator().manual_seed(0)
    starts = torch.randint(0, ids.numel() - SEQ_LEN, (N_CALIB,), generator=g)
    return torch.stack([ids[s : s + SEQ_LEN] for s in starts.tolist()])


@pytest.fixture(scope="module")
def results():
    return {}


def _ppl(model, tok, text):
    return perplexity_stats(model, tok, text, seq_len=SEQ_LEN, max_windows=EVAL_WINDOWS)


def _run(name, smollm2, wikitext, calib, results):
    if name in results:
        return results[name]
    model, tok = smollm2
    t0 = time.perf_counter()
    if name == "dense":
        m = model
    else:
        m = copy.deepcopy(model)
        if name in ("magnitude", "wanda", "sparsegpt"):
            rep = prune(m, calib, method=name, sparsity=0.5, progress=False)
            assert abs(rep["overall_sparsity"] - 0.5) < 0.005
        else:
            quantize(m, calib, method=name, bits=3, group_size=128, progress=False)
    t1 = time.perf_counter()
    stats = _ppl(m, tok, wikitext[0])
    results[name] = stats["ppl"]
    print(
        f"\n[smollm2] {name:>9}: ppl {stats['ppl']:.3f} on {stats['tokens']} tokens "
        f"(compress {t1 - t0:.1f}s, eval {time.perf_counter() - t1:.1f}s)"
    )
    return stats["ppl"]


def test_dense_perplexity(smollm2, wikitext, calib, results):
    ppl = _run("dense", smollm2, wikitext, calib, results)
    assert 5 < ppl < 60  # a working 135M model on Wikipedia text


def test_wanda_and_sparsegpt_beat_magnitude(smollm2, wikitext, calib, results):
    dense = _run("dense", smollm2, wikitext, calib, results)
    mag = _run("magnitude", smollm2, wikitext, calib, results)
    wanda = _run("wanda", smollm2, wikitext, calib, results)
    sgpt = _run("sparsegpt", smollm2, wikitext, calib, results)
    assert dense < wanda and dense < sgpt
    assert wanda < 0.5 * mag, (wanda, mag)
    assert sgpt < 0.5 * mag, (sgpt, mag)


def test_gptq_beats_rtn(smollm2, wikitext, calib, results):
    """At 3 bits. SmolLM2's weights come from a 4-bit GGUF (Q4_1), so at 4 bits
    round-to-nearest is already close to the weights' own grid and the two are within
    1% of each other (RTN 34.90, GPTQ 34.50 to 35.20 depending on the torch and
    transformers versions): no order to test there."""
    dense = _run("dense", smollm2, wikitext, calib, results)
    rtn = _run("rtn", smollm2, wikitext, calib, results)
    gptq = _run("gptq", smollm2, wikitext, calib, results)
    assert dense < gptq < 0.8 * rtn, (dense, gptq, rtn)


def test_built_accuracy_tasks_are_answerable(smollm2):
    """The dense model beats chance (25%) on the zero-shot tasks built from held-out
    text, so that the damage compression does can show. Measured on these 60 items:
    last word 90%, continuation 40%."""
    from zipcal.experiments.quality import mc_loglikelihoods
    from zipcal.experiments.tasks import build_tasks

    model, tok = smollm2
    tasks = build_tasks(WIKITEXT_DIR / "test.txt", examples=60)
    for name, items in tasks.items():
        lls = mc_loglikelihoods(model, tok, items)
        acc = sum(max(range(len(ll)), key=ll.__getitem__) == it["label"] for ll, it in zip(lls, items)) / len(items)
        print(f"\n[smollm2] {name}: accuracy {acc:.3f} on {len(items)} items (chance 0.25)")
        assert acc >= 0.33, (name, acc)

"""Model-based baselines (perplexity, COLA, self-gen) on a tiny random Llama."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import zipcal  # noqa: E402
from zipcal import strategies  # noqa: E402
from zipcal.selection import load_pool, select  # noqa: E402
from zipcal.strategies import model_based as baselines  # noqa: E402

torch.set_num_threads(2)

pytestmark = pytest.mark.slow


def _tokenizer():
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    from zipcal.tokenizer import gpt2_tokenizer_json

    try:
        text = gpt2_tokenizer_json()
    except zipcal.errors.MissingDependencyError as e:  # pragma: no cover
        pytest.skip(str(e))
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(text), eos_token="<|endoftext|>")
    tok.pad_token = tok.eos_token
    return tok


@pytest.fixture(scope="module")
def tok():
    return _tokenizer()


def _tiny_llama(vocab: int, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=vocab - 1,
        eos_token_id=vocab - 1,
        pad_token_id=vocab - 1,
    )
    return LlamaForCausalLM(cfg).eval()


@pytest.fixture(scope="module")
def model(tok):
    return _tiny_llama(len(tok))


@pytest.fixture(scope="module")
def pool():
    from zipcal.default_corpus import default_corpus

    docs = [d for d in default_corpus() if len(d) > 200][:36]
    return load_pool(docs, tokenizer="gpt2", min_tokens=8, seq_len=48)


def _fills(costs, order, budget):
    """Whether ``order`` is the shortest prefix of itself whose costs reach ``budget``."""
    spent = [int(costs[c]) for c in order]
    return sum(spent) >= budget > sum(spent[:-1])


def _costs(pool):
    """What each candidate spends of the rows: its tokens, plus the EOS that follows a
    candidate shorter than a row (GPT-2 adds no special tokens, so a row holds 48)."""
    return [int(t) + (1 if t < 48 else 0) for t in pool.tokens]


def _direct_nll(model, ids):
    """Mean next-token NLL of one unpadded sequence, straight from the logits."""
    x = torch.tensor([ids])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=x).logits[0, :-1].double(), -1)
    return float(-logp[torch.arange(len(ids) - 1), x[0, 1:]].mean())


OPTS = dict(max_length=48, batch_size=4, device="cpu")


@pytest.mark.parametrize("name", ["perplexity", "cola", "self-gen"])
def test_strategy_fills_the_rows_with_distinct_candidates(name, pool, model, tok):
    opts = dict(OPTS, model=model, model_tokenizer=tok)
    if name == "self-gen":
        opts["gen_length"] = 8
    sel = select(pool, 7, strategy=name, seed=3, **opts)
    assert sel.stats["tokens_through_model"] > 0
    assert sel.stats["device"] == "cpu"
    assert sel.stats["select_seconds"] > 0
    if name == "self-gen":
        assert sel.synthetic and len(sel.texts) == 7
        assert len(set(sel.candidates.tolist())) == 7  # distinct prefix documents
    else:
        # as many candidates as fill 7 rows of 48 tokens, the same budget as random's
        assert len(set(sel.candidates.tolist())) == len(sel) >= 7
        assert all(0 <= c < len(pool) for c in sel.candidates)
        assert _fills(_costs(pool), sel.candidates.tolist(), 7 * 48)
        assert sel.stats["tokens_fed"] == 7 * 48 and sel.stats["pad_tokens"] == 0
    assert strategies.get(name).needs_model


def test_perplexity_ranking_matches_direct_loss(pool, model, tok):
    n = 10
    sel = select(pool, n, strategy="perplexity", model=model, model_tokenizer=tok, **OPTS)
    direct = []
    for i in range(len(pool)):
        ids = tok(pool.candidate_text(i))["input_ids"][:48]
        direct.append(_direct_nll(model, ids))
    ranking = np.lexsort((np.arange(len(direct)), np.array(direct))).tolist()
    costs = _costs(pool)
    k = next(k for k in range(1, len(ranking) + 1) if sum(costs[c] for c in ranking[:k]) >= n * 48)
    assert sel.candidates.tolist() == ranking[:k]


def test_padding_does_not_change_scores(pool, model, tok):
    seqs = [tok(pool.candidate_text(i))["input_ids"][: 6 + 3 * i] for i in range(12)]
    lengths = {len(s) for s in seqs}
    assert len(lengths) > 1, "the batch must need padding"
    alone = [baselines.sequence_nll(model, [s], pad_id=7, batch_size=1)[0][0] for s in seqs]
    together, tokens = baselines.sequence_nll(model, seqs, pad_id=7, batch_size=12)
    assert tokens == sum(len(s) for s in seqs)
    np.testing.assert_allclose(together, alone, atol=1e-4, rtol=0)
    np.testing.assert_allclose(alone, [_direct_nll(model, s) for s in seqs], atol=1e-4, rtol=0)


def test_band_selection(pool, model, tok):
    a = select(pool, 5, strategy="perplexity", seed=1, band="40:60", model=model, model_tokenizer=tok, **OPTS)
    b = select(pool, 5, strategy="perplexity", seed=1, band=(40, 60), model=model, model_tokenizer=tok, **OPTS)
    assert a.candidates.tolist() == b.candidates.tolist()
    scores, _ = baselines.sequence_nll(model, [tok(pool.candidate_text(i))["input_ids"][:48] for i in range(len(pool))])
    rank = np.empty(len(scores), dtype=int)
    rank[np.lexsort((np.arange(len(scores)), scores))] = np.arange(len(scores))
    lo, hi = math.floor(0.4 * len(pool)), math.ceil(0.6 * len(pool))
    assert all(lo <= rank[c] < hi for c in a.candidates)


def test_cola_seeded_deterministic(pool, model, tok):
    runs = [
        select(pool, 6, strategy="cola", seed=s, model=model, model_tokenizer=tok, **OPTS).candidates.tolist()
        for s in (5, 5, 6)
    ]
    assert runs[0] == runs[1]
    assert len(set(runs[0])) == len(runs[0]) >= 6
    assert _fills(_costs(pool), runs[0], 6 * 48)


def test_kmeans_recovers_separated_clusters():
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0], [10, 0], [0, 10]], dtype=float)
    x = np.concatenate([c + 0.1 * rng.standard_normal((20, 2)) for c in centers])
    cents, labels = baselines.kmeans(x, 3, seed=1)
    assert sorted(np.bincount(labels).tolist()) == [20, 20, 20]
    picks = baselines.nearest_distinct(x, cents)
    assert sorted(set(p // 20 for p in picks.tolist())) == [0, 1, 2]
    # beyond one candidate per cluster, COLA takes the clusters in turn, nearest first
    order = baselines.cluster_order(x, cents, labels).tolist()
    assert sorted(order) == list(range(60)) and order[:3] == picks.tolist()
    dist = ((x - cents[labels]) ** 2).sum(1)
    for rnd in range(1, 20):
        batch = order[3 * rnd : 3 * rnd + 3]
        assert sorted(labels[batch].tolist()) == [0, 1, 2]  # one of each cluster per turn
    for c in range(3):
        mine = [p for p in order[3:] if labels[p] == c]
        assert all(dist[a] <= dist[b] for a, b in zip(mine, mine[1:]))


def test_self_gen_prefix_filters_highest_perplexity(pool, model, tok):
    n = 8
    opts = dict(model=model, tokenizer=tok, recipe="prefix", gen_length=6, max_length=48, batch_size=4, device="cpu")
    res = baselines.self_generate(pool, n, seed=2, **opts)
    count = math.ceil(n / 0.8)
    assert len(res["ids"]) == count
    assert all(len(s) == 4 + 6 for s in res["ids"])
    # the filter's scores are the plain per-sequence losses
    direct = np.array([_direct_nll(model, s) for s in res["ids"]])
    np.testing.assert_allclose(res["nll"], direct, atol=1e-4, rtol=0)
    dropped = sorted(set(range(count)) - set(res["kept"].tolist()))
    assert len(dropped) == count - n
    assert direct[dropped].min() >= direct[res["kept"]].max() - 1e-6
    # prefixes come from the recorded source documents
    for s, c in zip(res["ids"], res["sources"]):
        assert s[:4] == tok(pool.candidate_text(int(c)))["input_ids"][:4]
    picked = strategies.get("self-gen").fn(pool, n, seed=2, **opts)
    assert picked.texts == [tok.decode(res["ids"][int(i)], skip_special_tokens=True) for i in res["kept"]]
    assert picked.candidates.tolist() == res["sources"][res["kept"]].tolist()


def test_self_gen_bos_and_schedule(pool, model, tok):
    opts = dict(model=model, tokenizer=tok, recipe="bos", gen_length=5, batch_size=3, device="cpu")
    res = baselines.self_generate(pool, 4, seed=0, **opts)
    assert len(res["ids"]) == 4 and res["nll"] is None
    assert all(s[0] == model.config.bos_token_id and len(s) == 6 for s in res["ids"])
    via_select = dict(opts, model_tokenizer=opts.pop("tokenizer"))
    sel = select(pool, 4, strategy="self-gen", seed=0, temperature="1.5:0.5", **via_select)
    assert len(sel.texts) == 4 and sel.synthetic
    assert sel.indices.tolist() == [-1] * 4 and sel.sources == ["<generated>"] * 4
    assert sel.to_arrow().column("row").to_pylist() == [-1] * 4
    assert sel.stats["gen_temperature"] == [1.5, 0.5]
    again = select(pool, 4, strategy="self-gen", seed=0, temperature="1.5:0.5", **via_select)
    assert again.texts == sel.texts


def test_sampling_filters():
    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0, -3.0]])
    hist = torch.tensor([[0, 3]])
    out = baselines._filter_logits(logits.clone(), hist, 1.0, 0, 1.0, 2.0)
    assert torch.allclose(out, torch.tensor([[1.0, 1.0, 0.5, -2.0, -3.0]]))
    out = baselines._filter_logits(logits.clone(), hist, 1.0, 2, 1.0, 1.0)
    assert torch.isinf(out[0, 2:]).all() and torch.isfinite(out[0, :2]).all()
    p = torch.softmax(logits, -1)[0]
    out = baselines._filter_logits(logits.clone(), hist, 1.0, 0, float(p[0]) + 1e-3, 1.0)
    assert torch.isfinite(out[0, :2]).all() and torch.isinf(out[0, 2:]).all()


def test_model_by_folder_and_cli(tmp_path, model, tok, capsys):
    folder = tmp_path / "tiny"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    docs = tmp_path / "docs.jsonl"
    import json

    from zipcal.default_corpus import default_corpus

    with open(docs, "w") as f:
        for d in [d for d in default_corpus() if len(d) > 200][:30]:
            f.write(json.dumps({"text": d}) + "\n")
    from zipcal.cli import main

    out = tmp_path / "sel.jsonl"
    rc = main(
        [
            "select",
            str(docs),
            "-n",
            "4",
            "--seq-len",
            "32",
            "--strategy",
            "perplexity",
            "-q",
            "-o",
            str(out),
            "--option",
            f"model={folder}",
            "--option",
            "device=cpu",
            "--tokenizer",
            str(folder),
        ]
    )
    assert rc == 0
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    costs = [r["tokens"] + (1 if r["tokens"] < 32 else 0) for r in rows]
    assert len(rows) >= 4 and sum(costs) >= 4 * 32 > sum(costs[:-1])


def test_selection_engine_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, zipcal, zipcal.strategies as s; zipcal.select(None, 4); "
        "assert {'perplexity', 'cola', 'self-gen'} <= set(s.available()); assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

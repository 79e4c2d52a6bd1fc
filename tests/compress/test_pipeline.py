"""Sequential pipeline on tiny random Llama / GPT-2 / OPT models."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from zipcal.compress import hooks, prune, quantize, save_compressed
from zipcal.compress.calib import CalibrationError

KINDS = ["llama", "gpt2", "opt"]


def _linears(model):
    _, layers = hooks.find_decoder_layers(model)
    out = {}
    for i, layer in enumerate(layers):
        for name, mod in hooks.find_linears(layer).items():
            out[f"{i}.{name}"] = mod
    return out


def _untouched(model, ref):
    """Parameters outside the decoder linears are unchanged."""
    lin = {id(m.weight) for m in _linears(model).values()}
    for (name, p), (_, q) in zip(model.named_parameters(), ref.named_parameters()):
        if id(p) not in lin:
            assert torch.equal(p, q), name


@pytest.mark.parametrize("kind", KINDS)
def test_captured_inputs_replay_matches_model(kind, calib_batch, make_model):
    """Capturing the first layer's inputs and replaying layer by layer reproduces
    the model's own hidden states (padding included)."""
    model = make_model(kind)
    path, layers = hooks.find_decoder_layers(model)
    ids, mask = calib_batch["input_ids"], calib_batch["attention_mask"]
    batches = hooks.capture_layer_inputs(model, path, layers, ids, mask, torch.device("cpu"), batch_size=3)
    with torch.no_grad():
        want = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        hidden = [b.hidden for b in batches]
        torch.testing.assert_close(torch.cat(hidden), want[0])
        for i, layer in enumerate(layers[:-1]):  # the last entry of hidden_states is after the final norm
            for b in batches:
                b.hidden = hooks.run_layer(layer, b)
            got = torch.cat([b.hidden for b in batches])
            valid = mask.bool()
            torch.testing.assert_close(got[valid], want[i + 1][valid], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["magnitude", "wanda", "sparsegpt"])
def test_prune_unstructured(kind, method, calib_batch, make_model):
    model = make_model(kind)
    ref = copy.deepcopy(model)
    report = prune(model, calib_batch, method=method, sparsity=0.5, device="cpu", progress=False)
    assert 0.49 <= report["overall_sparsity"] <= 0.51
    assert len(report["layers"]) == 2
    for name, mod in _linears(model).items():
        frac = float((mod.weight == 0).float().mean())
        assert abs(frac - 0.5) < 0.02, (name, frac)
        if method == "wanda":
            # per output row, in the module's own orientation (GPT-2 Conv1D is [in, out])
            w = mod.weight.t() if hooks.is_transposed(mod) else mod.weight
            per_row = (w == 0).sum(1)
            assert bool((per_row == w.shape[1] // 2).all()), name
    _untouched(model, ref)
    out = model(calib_batch["input_ids"]).logits
    assert torch.isfinite(out).all()
    assert not torch.allclose(out, ref(calib_batch["input_ids"]).logits)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["magnitude", "wanda", "sparsegpt"])
@pytest.mark.parametrize("structure", ["2:4", "4:8"])
def test_prune_nm(kind, method, structure, calib_batch, make_model):
    n, m = map(int, structure.split(":"))
    model = make_model(kind)
    report = prune(model, calib_batch, method=method, structure=structure, device="cpu", progress=False)
    assert report["structure"] == structure
    for name, mod in _linears(model).items():
        w = mod.weight.t() if hooks.is_transposed(mod) else mod.weight  # [out, in]
        groups = (w != 0).reshape(w.shape[0], -1, m).sum(-1)
        assert int(groups.max()) <= n, name
    assert torch.isfinite(model(calib_batch["input_ids"]).logits).all()


@pytest.mark.parametrize("method", ["wanda", "sparsegpt"])
def test_owl_non_uniform(method, calib_batch, make_model):
    model = make_model("llama")
    report = prune(
        model, calib_batch, method=method, sparsity=0.5, owl=True, owl_lambda=0.05, device="cpu", progress=False
    )
    targets = [l["target"] for l in report["layers"]]
    assert sum(targets) / 2 == pytest.approx(0.5)
    assert max(targets) - min(targets) == pytest.approx(0.1)
    for layer in report["layers"]:
        assert abs(layer["sparsity"] - layer["target"]) < 0.02
    assert len(report["owl_params"]["outlier_ratios"]) == 2
    with pytest.raises(ValueError):
        prune(make_model("llama"), calib_batch, method=method, structure="2:4", owl=True, progress=False)


def test_sequential_uses_compressed_outputs(calib_batch, make_model):
    """Layer 1's statistics come from the already-pruned layer 0: pruning both layers
    in one run differs from pruning each layer with dense-model statistics."""
    model = make_model("llama")
    dense = copy.deepcopy(model)
    prune(model, calib_batch, method="sparsegpt", sparsity=0.5, device="cpu", progress=False)
    # prune only layer 0 of a copy, then compare layer 1 pruned with dense inputs
    from zipcal.compress import kernels as K

    path, layers = hooks.find_decoder_layers(dense)
    batches = hooks.capture_layer_inputs(
        dense, path, layers, calib_batch["input_ids"], calib_batch["attention_mask"], torch.device("cpu")
    )
    with torch.no_grad():
        for b in batches:
            b.hidden = hooks.run_layer(layers[0], b)
        lin = hooks.find_linears(layers[1])
        with hooks.InputStats(lin, K.accumulate_hessian) as st:
            for b in batches:
                st.token_mask = b.token_mask
                hooks.run_layer(layers[1], b)
    name = "self_attn.q_proj"
    h = K.finalize_hessian(st.state[name], st.count[name])
    with_dense_stats = K.prune_sparsegpt(hooks.get_weight(lin[name]), h, 0.5)[0]
    got = hooks.get_weight(hooks.find_linears(hooks.find_decoder_layers(model)[1][1])[name])
    assert not torch.allclose(got, with_dense_stats)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["rtn", "gptq"])
def test_quantize_and_round_trip(kind, method, calib_batch, tmp_path, make_model):
    model = make_model(kind)
    ref = copy.deepcopy(model)
    meta = quantize(
        model,
        calib_batch,
        method=method,
        bits=4,
        group_size=16,
        act_order=(method == "gptq"),
        device="cpu",
        progress=False,
    )
    assert meta["method"] == method and meta["bits"] == 4 and meta["group_size"] == 16
    assert len(meta["layers"]) == len(_linears(model))
    for _name, mod in _linears(model).items():
        w = hooks.get_weight(mod)
        # each row of each group holds at most 16 distinct values
        if method == "rtn":
            g = w.reshape(w.shape[0], -1, 16)
            assert max(len(torch.unique(g[r, k])) for r in range(g.shape[0]) for k in range(g.shape[1])) <= 16
    _untouched(model, ref)
    out = model(calib_batch["input_ids"]).logits
    assert torch.isfinite(out).all()

    save_compressed(model, tmp_path / "q", metadata=meta)
    saved = json.loads((tmp_path / "q" / "zipcal_quantization.json").read_text())
    assert saved["method"] == method and saved["layers"].keys() == meta["layers"].keys()
    from transformers import AutoModelForCausalLM

    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "q").eval()
    for (n1, p1), (n2, p2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2), n1
    torch.testing.assert_close(loaded(calib_batch["input_ids"]).logits, out)


def test_prune_save_round_trip(calib_batch, tmp_path, make_model):
    model = make_model("gpt2")
    report = prune(model, calib_batch, method="wanda", sparsity=0.5, progress=False)
    save_compressed(model, tmp_path / "p", metadata=report)
    assert (tmp_path / "p" / "zipcal_pruning.json").is_file()
    from transformers import AutoModelForCausalLM

    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "p").eval()
    for _name, mod in _linears(loaded).items():
        assert abs(float((mod.weight == 0).float().mean()) - 0.5) < 0.02
    # refuses to overwrite
    from zipcal.compress import OutputExistsError

    with pytest.raises(OutputExistsError):
        save_compressed(model, tmp_path / "p", metadata=report)
    save_compressed(model, tmp_path / "p", metadata=report, overwrite=True)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_layers_stay_on_their_device(calib_batch, make_model):
    model = make_model("llama")
    prune(model, calib_batch, method="wanda", sparsity=0.5, device="auto", progress=False)
    assert {p.device.type for p in model.parameters()} == {"cpu"}


def test_bfloat16_model(calib_batch, make_model):
    model = make_model("llama").to(torch.bfloat16)
    quantize(model, calib_batch, method="gptq", bits=4, group_size=32, progress=False)
    assert model.model.layers[0].self_attn.q_proj.weight.dtype == torch.bfloat16
    prune(model, calib_batch, method="sparsegpt", sparsity=0.5, progress=False)
    assert abs(float((model.model.layers[1].mlp.up_proj.weight == 0).float().mean()) - 0.5) < 0.02


def test_errors(calib_batch, make_model):
    model = make_model("llama", vocab_size=100)
    with pytest.raises(CalibrationError, match="embedding"):
        prune(model, calib_batch, method="wanda", progress=False)  # ids up to 319
    with pytest.raises(CalibrationError):
        prune(model, None, method="wanda", progress=False)
    with pytest.raises(ValueError, match="unknown pruning method"):
        prune(model, calib_batch, method="nope")
    with pytest.raises(ValueError, match="bits"):
        quantize(model, calib_batch, method="rtn", bits=1)


def test_shared_input_statistics_equal_direct(calib_batch, make_model):
    """q/k/v (and gate/up) share one accumulation; it must equal each module's own inputs."""
    from zipcal.compress import kernels as K

    model = make_model("llama")
    path, layers = hooks.find_decoder_layers(model)
    batches = hooks.capture_layer_inputs(
        model, path, layers, calib_batch["input_ids"], calib_batch["attention_mask"], torch.device("cpu"), 3
    )
    lin = hooks.find_linears(layers[0])
    seen = {name: [] for name in lin}
    handles = [
        mod.register_forward_hook(lambda m, i, o, n=name: seen[n].append(i[0].detach().clone()))
        for name, mod in lin.items()
    ]
    with torch.no_grad(), hooks.InputStats(lin, K.accumulate_hessian) as st:
        for b in batches:
            st.token_mask = b.token_mask
            hooks.run_layer(layers[0], b)
    for h in handles:
        h.remove()
    assert st.alias  # the sharing is in effect for this architecture
    stats = {name: K.finalize_hessian(s, c) for name, s, c in st.items()}
    for name in lin:
        x = torch.cat([x[b.token_mask] for x, b in zip(seen[name], batches)])
        torch.testing.assert_close(stats[name], 2.0 / x.shape[0] * x.t() @ x, rtol=1e-4, atol=1e-5)

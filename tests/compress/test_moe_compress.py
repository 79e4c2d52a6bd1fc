"""Compressing MoE models whose routed experts are 3-D tensors (transformers 5):
every expert is compressed, with the statistics of its own routed real tokens;
experts no token reaches and routers are handled as documented."""

from __future__ import annotations

import contextlib
import logging

import pytest

torch = pytest.importorskip("torch")
tf = pytest.importorskip("transformers")

from support.compress_cli import run_cli, save_model  # noqa: E402
from support.moe import kill_expert, moe_model, padded_batch  # noqa: E402
from transformers.integrations.moe import batched_mm_experts_forward, use_experts_implementation  # noqa: E402

from zipcal.compress import kernels as K  # noqa: E402
from zipcal.compress import prune, quantize, save_compressed  # noqa: E402
from zipcal.compress.experts import ExpertLinears, is_fused_experts, unfused_experts  # noqa: E402
from zipcal.errors import InvalidArgumentError  # noqa: E402

KINDS = ["mixtral", "qwen2_moe", "qwen3_moe", "gpt_oss"]


def model_of(kind: str, seed: int = 0):
    if kind != "gpt_oss":
        return moe_model(kind, seed=seed)
    torch.manual_seed(seed)
    cfg = tf.GptOssConfig(
        vocab_size=320,
        hidden_size=32,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        num_local_experts=4,
        num_experts_per_tok=2,
        max_position_embeddings=256,
        layer_types=["full_attention"] * 2,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        pad_token_id=1,
        eos_token_id=0,
    )
    model = tf.GptOssForCausalLM(cfg).eval()
    with torch.no_grad():  # biases start at zero: make them count
        for name, p in model.named_parameters():
            if name.endswith("_bias"):
                p.normal_(0, 0.1)
    return model


def experts_of(model):
    return [m for m in model.modules() if is_fused_experts(m)]


@pytest.mark.parametrize("all_tokens", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_unfused_forward_is_the_fused_one(kind, all_tokens):
    model = model_of(kind)
    batch, _ = padded_batch()
    assert len(experts_of(model)) == 2
    with torch.no_grad():
        ref = model(**batch, use_cache=False).logits
        with contextlib.ExitStack() as stack:
            for layer in model.model.layers:
                assert stack.enter_context(unfused_experts(layer, all_tokens)) == ["mlp.experts"]
            assert isinstance(model.model.layers[0].mlp.experts, ExpertLinears)
            got = model(**batch, use_cache=False).logits
    assert torch.allclose(got, ref, atol=1e-5, rtol=1e-4)
    assert len(experts_of(model)) == 2  # restored


@use_experts_implementation(has_gate=False, is_transposed=True, has_post_expert_norm=True)
class UngatedExperts(torch.nn.Module):
    """Ungated, transposed experts with a norm after each: a layout no tiny model here
    has, written against transformers' own description of it."""

    def __init__(self, config, experts: int = 3, hidden: int = 8, inner: int = 12) -> None:
        super().__init__()
        self.num_experts = experts
        self.up_proj = torch.nn.Parameter(torch.randn(experts, hidden, inner))
        self.down_proj = torch.nn.Parameter(torch.randn(experts, inner, hidden))
        self.act_fn = torch.nn.functional.gelu
        self.post_expert_norm = torch.nn.LayerNorm(hidden)

    def forward(self, hidden_states, top_k_index, top_k_weights):  # pragma: no cover - replaced below
        raise NotImplementedError


def test_ungated_transposed_layout_matches_transformers_reference():
    torch.manual_seed(3)
    config = tf.PretrainedConfig()
    experts = UngatedExperts(config)
    assert is_fused_experts(experts)
    holder = torch.nn.Module()
    holder.experts = experts
    x = torch.randn(10, 8)
    idx = torch.stack([torch.randperm(3)[:2] for _ in range(10)])
    w = torch.rand(10, 2)
    with torch.no_grad():
        ref = batched_mm_experts_forward(experts, x, idx, w)
        with unfused_experts(holder):
            got = holder.experts(x, idx, w)
            names = [n for n, m in holder.named_modules() if isinstance(m, torch.nn.Linear)]
    assert torch.allclose(got, ref, atol=1e-5)
    assert names == [f"experts.{e}.{p}" for e in range(3) for p in ("up_proj", "down_proj")]


def routed_inputs(model, batch, everything: bool = False):
    """Per expert of layer 0, the experts module's input rows routed to it (with
    ``everything``, all rows) that are real tokens, and the number of padding rows
    routed to it, from a forward of the unmodified model."""
    seen = {}
    experts = model.model.layers[0].mlp.experts

    def hook(mod, args, kwargs):
        seen["x"], seen["idx"] = args[0].detach(), args[1].detach()

    h = experts.register_forward_pre_hook(hook, with_kwargs=True)
    with torch.no_grad():
        model(**batch, use_cache=False)
    h.remove()
    real = batch["attention_mask"].reshape(-1).bool()
    out = []
    for e in range(experts.down_proj.shape[0]):
        routed = (seen["idx"] == e).any(-1) | everything
        out.append((seen["x"][routed & real], int((routed & ~real).sum())))
    return out


def expert_weights(model, layer: int = 0):
    f = model.model.layers[layer].mlp.experts
    up = f.gate_up_proj.detach().clone()
    if getattr(f, "is_transposed", False):
        up = up.transpose(1, 2)
    return up


@pytest.mark.parametrize("kind", ["qwen3_moe", "gpt_oss"])
def test_wanda_prunes_every_expert_with_its_routed_real_tokens(kind):
    model = model_of(kind)
    batch, _ = padded_batch()
    routed = routed_inputs(model, batch)
    assert sum(pads for _, pads in routed) > 0  # padding is routed: counting it would show
    before = expert_weights(model)
    report = prune(model, batch, method="wanda", sparsity=0.5, device="cpu", progress=False)
    after = expert_weights(model)
    experts = model.model.layers[0].mlp.experts
    for e, (x, _) in enumerate(routed):
        assert x.shape[0] > 0
        norms = x.float().pow(2).mean(0)
        want, _ = K.prune_wanda(before[e].float(), norms, 0.5, None)
        assert torch.equal(after[e].float(), want), f"expert {e}"
    # every expert tensor is half zeros, and the report counts them
    for f in experts_of(model):
        assert float((f.down_proj == 0).float().mean()) == pytest.approx(0.5)
    weights = sum(
        p.numel()
        for n, p in model.model.layers.named_parameters()
        if p.dim() >= 2 and not n.endswith("bias") and ".router." not in n and ".gate." not in n
    )
    assert report["total_params"] == weights
    assert report["overall_sparsity"] == pytest.approx(0.5)
    assert report["uncalibrated"] == [] and report["uncompressed"] == {}
    assert "model.layers.1.mlp.experts.3.down_proj" in report["layers"][1]["modules"]
    assert experts.gate_up_proj.requires_grad  # the model's own parameters, untouched otherwise


def test_routers_and_gates_are_left_alone():
    model = moe_model("qwen2_moe")
    batch, _ = padded_batch()
    layer = model.model.layers[0]
    gates = {n: p.detach().clone() for n, p in layer.named_parameters() if n.endswith("gate.weight")}
    assert set(gates) == {"mlp.gate.weight", "mlp.shared_expert_gate.weight"}
    prune(model, batch, method="sparsegpt", sparsity=0.5, device="cpu", progress=False)
    for n, p in layer.named_parameters():
        if n in gates:
            assert torch.equal(p, gates[n]), n
    assert float((layer.mlp.shared_expert.up_proj.weight == 0).float().mean()) == pytest.approx(0.5)


def test_expert_without_tokens_falls_back_and_is_listed(caplog):
    model = moe_model("mixtral", experts=5)
    kill_expert(model, layer=1, dead=4)
    batch, _ = padded_batch()
    dead = model.model.layers[1].mlp.experts
    w = dead.down_proj[4].detach().clone()
    with caplog.at_level(logging.WARNING, logger="zipcal.compress.pipeline"):
        report = prune(model, batch, method="wanda", sparsity=0.5, device="cpu", progress=False)
    assert report["uncalibrated"] == [
        "model.layers.1.mlp.experts.4.gate_up_proj",
        "model.layers.1.mlp.experts.4.down_proj",
    ]
    assert "got no real calibration token" in caplog.text
    want, _ = K.prune_magnitude(w.float(), 0.5, None)
    assert torch.equal(dead.down_proj[4].float(), want)

    model = moe_model("mixtral", experts=5)
    kill_expert(model, layer=1, dead=4)
    meta = quantize(model, batch, method="gptq", bits=4, group_size=16, device="cpu", progress=False)
    assert meta["uncalibrated"] == report["uncalibrated"]
    assert meta["layers"]["model.layers.1.mlp.experts.4.down_proj"]["uncalibrated"] is True
    assert "gptq_loss" in meta["layers"]["model.layers.1.mlp.experts.1.down_proj"]
    q = model.model.layers[1].mlp.experts.down_proj[4]
    assert all(len(torch.unique(row[:16])) <= 16 for row in q)  # on a 4-bit grid


def test_unknown_3d_weights_are_reported(caplog):
    model = moe_model("qwen3_moe")
    layer = model.model.layers[0]
    layer.custom = torch.nn.Module()
    layer.custom.w = torch.nn.Parameter(torch.randn(2, 3, 4))
    batch, _ = padded_batch()
    with caplog.at_level(logging.WARNING, logger="zipcal.compress.pipeline"):
        report = prune(model, batch, method="magnitude", sparsity=0.5, device="cpu", progress=False)
    assert report["uncompressed"] == {"model.layers.0.custom.w": 24}
    assert "left as they are" in caplog.text


def test_pruned_moe_saves_and_reloads_in_its_own_format(tmp_path):
    model = moe_model("qwen3_moe")
    batch, _ = padded_batch()
    report = prune(model, batch, method="wanda", structure="2:4", device="cpu", progress=False)
    save_compressed(model, tmp_path / "out", metadata=report)
    again = tf.AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    for a, b in zip(experts_of(model), experts_of(again)):
        assert torch.equal(a.gate_up_proj, b.gate_up_proj) and torch.equal(a.down_proj, b.down_proj)
        groups = b.down_proj.reshape(-1, 4)
        assert int((groups != 0).sum(-1).max()) <= 2


def test_cli_names_the_experts_compressed_without_statistics(tmp_path, tiny_tokenizer, calib_file, capsys):
    model = moe_model("qwen3_moe", len(tiny_tokenizer), experts=6)
    kill_expert(model, layer=0, dead=2)
    src = save_model(model, tiny_tokenizer, tmp_path / "moe")
    common = ["compress", str(src), "--calib", str(calib_file), "--seq-len", "48", "--device", "cpu", "-q"]
    assert run_cli(common + ["--method", "wanda", "-o", str(tmp_path / "w")]) == 0
    out = capsys.readouterr().out
    assert "2 linear layers got no real calibration token" in out
    assert "model.layers.0.mlp.experts.2.gate_up_proj" in out
    pruned = tf.AutoModelForCausalLM.from_pretrained(tmp_path / "w")
    assert float((pruned.model.layers[1].mlp.experts.down_proj == 0).float().mean()) == pytest.approx(0.5)
    assert run_cli(common + ["--method", "gptq", "--group-size", "16", "-o", str(tmp_path / "q")]) == 0
    assert "2 linear layers got no real calibration token" in capsys.readouterr().out
    assert run_cli(common + ["--method", "sparsegpt", "--experts", "all", "-o", str(tmp_path / "a")]) == 0
    assert "no real calibration token" not in capsys.readouterr().out


def test_all_tokens_mode_calibrates_every_expert_on_every_real_token():
    model = moe_model("mixtral", experts=5)
    kill_expert(model, layer=0, dead=4)
    batch, _ = padded_batch()
    everyone = routed_inputs(model, batch, everything=True)
    assert routed_inputs(model, batch)[4][0].shape[0] == 0  # the router never picks it
    before = expert_weights(model)
    report = prune(model, batch, method="wanda", sparsity=0.5, device="cpu", progress=False, experts="all")
    assert report["uncalibrated"] == [] and report["experts"] == "all"
    after = expert_weights(model)
    for e, (x, _) in enumerate(everyone):
        want, _ = K.prune_wanda(before[e].float(), x.float().pow(2).mean(0), 0.5, None)
        assert torch.equal(after[e].float(), want), f"expert {e}"


def test_experts_mode_is_checked():
    with pytest.raises(InvalidArgumentError, match="experts must be one of routed, all"):
        prune(moe_model("mixtral"), padded_batch()[0], method="wanda", device="cpu", experts="some")

"""GPTQ column orders and static group scales (llm-compressor's default ``actorder="static"``)."""

from __future__ import annotations

import pytest
import torch

from zipcal.compress import kernels as K
from zipcal.errors import InvalidArgumentError


def _problem(rows: int = 24, cols: int = 128, seed: int = 0):
    """Weight and correlated Hessian ``2/N XᵀX`` with a spread-out diagonal."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(cols, cols, generator=g) / cols**0.5 + torch.eye(cols)
    x = torch.randn(1024, cols, generator=g) @ mix * (torch.rand(cols, generator=g) * 3 + 0.2)
    h = 2 * x.T @ x / x.shape[0]
    w = torch.randn(rows, cols, generator=g) * 0.05
    return w, h


def _proxy(w: torch.Tensor, q: torch.Tensor, h: torch.Tensor) -> float:
    """Layer reconstruction error ``tr((W-Q) H (W-Q)ᵀ)`` (output MSE up to a constant)."""
    d = (w - q).double()
    return float(torch.einsum("ij,jk,ik->", d, h.double(), d))


def _codes_on_grid(q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int) -> None:
    codes = q / scale.unsqueeze(1) + zero.unsqueeze(1)
    assert float((codes - codes.round()).abs().max()) < 1e-3
    assert float(codes.round().min()) >= 0 and float(codes.round().max()) <= 2**bits - 1


@pytest.mark.parametrize("act_order", ["static", "none"])
@pytest.mark.parametrize("symmetric", [False, True])
def test_static_columns_on_original_group_grid(act_order, symmetric):
    bits, gs = 3, 16
    w, h = _problem()
    q, scales, zeros, g_idx, loss = K.quantize_gptq(
        w, h, bits, gs, act_order=act_order, symmetric=symmetric, blocksize=32, static_groups=True
    )
    assert torch.equal(g_idx, torch.arange(w.shape[1]) // gs)
    assert scales.shape == zeros.shape == (w.shape[0], w.shape[1] // gs)
    assert loss > 0
    for g in range(w.shape[1] // gs):
        cols = slice(g * gs, (g + 1) * gs)
        s_ref, z_ref = K.quant_params(w[:, cols], bits, symmetric)  # ORIGINAL weights of group g
        torch.testing.assert_close(scales[:, g], s_ref, rtol=0, atol=0)
        torch.testing.assert_close(zeros[:, g], z_ref, rtol=0, atol=0)
        _codes_on_grid(q[:, cols], s_ref, z_ref, bits)


def test_group_mode_uses_updated_weights():
    """Control for the test above: dynamic groups do not keep the original-weight grid."""
    bits, gs = 3, 16
    w, h = _problem()
    _, scales, _, _, _ = K.quantize_gptq(w, h, bits, gs, act_order="group", blocksize=32)
    s0 = torch.stack([K.quant_params(w[:, g * gs : (g + 1) * gs], bits)[0] for g in range(w.shape[1] // gs)], 1)
    assert not torch.allclose(scales, s0)


@pytest.mark.parametrize("act_order", ["static", "none"])
@pytest.mark.parametrize("bits,gs,symmetric", [(4, 16, False), (3, 32, True), (2, 8, False)])
def test_static_identity_like_hessian_equals_rtn(act_order, bits, gs, symmetric):
    # A diagonal Hessian gives a diagonal inverse factor: no error feedback. Distinct
    # diagonal entries make the activation order a real permutation.
    w, _ = _problem(cols=64)
    for h in (torch.eye(64), torch.diag(torch.rand(64, generator=torch.Generator().manual_seed(3)) + 0.5)):
        q, scales, zeros, g_idx, _ = K.quantize_gptq(
            w, h, bits, gs, act_order=act_order, symmetric=symmetric, blocksize=16, static_groups=True
        )
        r, r_scales, r_zeros, r_gidx = K.quantize_rtn(w, bits, gs, symmetric)
        torch.testing.assert_close(q, r, rtol=0, atol=1e-7)
        assert torch.equal(scales, r_scales) and torch.equal(zeros, r_zeros) and torch.equal(g_idx, r_gidx)


@pytest.mark.parametrize("bits,gs", [(4, 32), (3, 16), (4, None)])
def test_static_actorder_beats_rtn(bits, gs):
    w, h = _problem(rows=32, cols=128, seed=1)
    e_rtn = _proxy(w, K.quantize_rtn(w, bits, gs)[0], h)
    e_static = _proxy(w, K.quantize_gptq(w, h, bits, gs, act_order="static")[0], h)
    assert e_static <= e_rtn, (e_static, e_rtn)
    assert e_static < 0.9 * e_rtn  # GPTQ's error feedback is worth a clear margin here


def test_modes_differ():
    bits, gs = 3, 16
    w, h = _problem(seed=2)
    out = {
        mode: K.quantize_gptq(w, h, bits, gs, act_order=mode, blocksize=32, static_groups=static)
        for mode, static in (("none", None), ("group", None), ("static", None))
    }
    out["none+static"] = K.quantize_gptq(w, h, bits, gs, act_order="none", blocksize=32, static_groups=True)
    names = list(out)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not torch.equal(out[a][0], out[b][0]), (a, b)
    # g_idx: trivial except for "group", where groups follow the activation order
    trivial = torch.arange(w.shape[1]) // gs
    for name in ("none", "static", "none+static"):
        assert torch.equal(out[name][3], trivial)
    perm = torch.argsort(torch.diag(h), descending=True)
    expected = torch.empty_like(trivial)
    expected[perm] = trivial
    assert torch.equal(out["group"][3], expected)
    assert not torch.equal(expected, trivial)


def test_act_order_aliases_and_errors():
    w, h = _problem(rows=8, cols=64)
    ref = {m: K.quantize_gptq(w, h, 4, 16, act_order=m)[0] for m in ("none", "group", "static")}
    for alias, mode in ((False, "none"), (None, "none"), (True, "group"), ("dynamic", "group"), ("weight", "static")):
        assert torch.equal(K.quantize_gptq(w, h, 4, 16, act_order=alias)[0], ref[mode]), alias
    assert K.resolve_actorder("STATIC") == ("static", True)
    assert K.resolve_actorder(False, True) == ("none", True)
    assert K.resolve_actorder(True) == ("group", False)
    for bad in (("static", False), ("group", True), (True, True), ("sideways", None)):
        with pytest.raises(InvalidArgumentError):
            K.resolve_actorder(*bad)


def test_pipeline_threads_static_groups(calib_batch, make_model):
    from zipcal.compress import hooks
    from zipcal.compress.pipeline import quantize

    model = make_model("llama")
    layers = hooks.find_decoder_layers(model)[1]
    before = {n: hooks.get_weight(m).float().clone() for n, m in hooks.find_linears(layers[0]).items()}
    meta = quantize(model, calib_batch, "gptq", 4, 16, static_groups=True, device="cpu", progress=False)
    assert meta["act_order"] is False and meta["actorder"] == "none" and meta["static_groups"] is True
    for name, mod in hooks.find_linears(layers[0]).items():
        w0, q = before[name], hooks.get_weight(mod).float()
        for g0 in range(0, w0.shape[1], 16):
            _codes_on_grid(q[:, g0 : g0 + 16], *K.quant_params(w0[:, g0 : g0 + 16], 4), 4)
    with pytest.raises(InvalidArgumentError):
        quantize(make_model("llama"), calib_batch, "rtn", 4, 16, act_order="static", device="cpu", progress=False)


@pytest.mark.parametrize(
    "argv,actorder,static",
    [
        ([], None, False),
        (["--act-order"], "group", False),
        (["--actorder", "static"], "static", False),
        (["--actorder", "weight"], "weight", False),
        (["--actorder", "none", "--static-groups"], "none", True),
    ],
)
def test_cli_actorder_flags(argv, actorder, static):
    import argparse

    from zipcal.compress.commands import register

    parser = argparse.ArgumentParser(prog="zipcal")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["compress", "m", "--method", "gptq", "-o", "x", *argv])
    assert args.actorder == actorder and args.static_groups is static
    with pytest.raises(SystemExit):
        parser.parse_args(["compress", "m", "--method", "gptq", "-o", "x", "--actorder", "sideways"])

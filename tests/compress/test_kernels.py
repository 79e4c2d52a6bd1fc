"""Kernels against slow, direct implementations on small random matrices."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from zipcal.compress import kernels as K


def _inputs(cols: int, tokens: int = 512, seed: int = 0) -> torch.Tensor:
    """Correlated inputs with uneven feature scales (like real activations)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(tokens, cols, generator=g)
    mix = torch.eye(cols) + 0.3 * torch.randn(cols, cols, generator=g)
    scales = torch.exp(torch.randn(cols, generator=g))
    return (base @ mix) * scales


def _weight(rows: int, cols: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, cols, generator=g)


def _hessian(x: torch.Tensor) -> torch.Tensor:
    h, n = K.accumulate_hessian(None, 0, x)
    return K.finalize_hessian(h, n)


def _out_err(w: torch.Tensor, w_hat: torch.Tensor, x: torch.Tensor) -> float:
    return float(torch.linalg.norm(x @ w.t() - x @ w_hat.t()))


# ---------------------------------------------------------------- statistics
def test_hessian_accumulation_matches_definition():
    x = _inputs(24, 300)
    h, n = None, 0
    for chunk in x.split(70):
        h, n = K.accumulate_hessian(h, n, chunk.reshape(1, -1, 24))
    direct = 2.0 / x.shape[0] * (x.double().t() @ x.double())
    assert n == 300
    torch.testing.assert_close(K.finalize_hessian(h, n).double(), direct, rtol=1e-5, atol=1e-4)


def test_sq_norm_accumulation_matches_definition():
    x = _inputs(16, 200)
    s, n = None, 0
    for chunk in x.split(33):
        s, n = K.accumulate_sq_norms(s, n, chunk)
    direct = torch.tensor([sum(float(x[t, j]) ** 2 for t in range(200)) / 200 for j in range(16)])
    torch.testing.assert_close(K.finalize_sq_norms(s, n), direct, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- pruning
def _slow_wanda_mask(w, act, sparsity):
    rows, cols = w.shape
    k = int(cols * sparsity)
    mask = torch.zeros(rows, cols, dtype=torch.bool)
    for i in range(rows):
        scores = [abs(float(w[i, j])) * math.sqrt(float(act[j])) for j in range(cols)]
        for j in sorted(range(cols), key=lambda j: scores[j])[:k]:
            mask[i, j] = True
    return mask


@pytest.mark.parametrize("sparsity", [0.3, 0.5, 0.7])
def test_wanda_mask_equals_definition(sparsity):
    w = _weight(12, 40)
    act = K.finalize_sq_norms(*K.accumulate_sq_norms(None, 0, _inputs(40)))
    pruned, mask = K.prune_wanda(w, act, sparsity)
    expected = _slow_wanda_mask(w, act, sparsity)
    assert torch.equal(mask, expected)
    assert torch.equal(pruned, torch.where(expected, torch.zeros_like(w), w))
    assert all(int(mask[i].sum()) == int(40 * sparsity) for i in range(12))


@pytest.mark.parametrize("structure", ["2:4", "4:8", "1:4"])
def test_wanda_nm_mask_equals_definition(structure):
    n, m = map(int, structure.split(":"))
    w = _weight(10, 32)
    act = K.finalize_sq_norms(*K.accumulate_sq_norms(None, 0, _inputs(32)))
    _, mask = K.prune_wanda(w, act, structure=structure)
    for i in range(10):
        for g0 in range(0, 32, m):
            scores = {j: abs(float(w[i, j])) * math.sqrt(float(act[j])) for j in range(g0, g0 + m)}
            lowest = sorted(scores, key=scores.get)[: m - n]
            assert {j for j in range(g0, g0 + m) if mask[i, j]} == set(lowest)


def _assert_nm(w: torch.Tensor, n: int, m: int) -> None:
    groups = (w != 0).reshape(w.shape[0], -1, m).sum(-1)
    assert int(groups.max()) <= n


@pytest.mark.parametrize("structure", ["2:4", "4:8"])
def test_nm_pattern_holds_exactly_for_all_methods(structure):
    n, m = map(int, structure.split(":"))
    w = _weight(16, 256)
    x = _inputs(256)
    act = K.finalize_sq_norms(*K.accumulate_sq_norms(None, 0, x))
    for pruned, mask in (
        K.prune_magnitude(w, structure=structure),
        K.prune_wanda(w, act, structure=structure),
        K.prune_sparsegpt(w, _hessian(x), structure=structure),
    ):
        _assert_nm(pruned, n, m)
        assert torch.equal(mask.reshape(16, -1, m).sum(-1), torch.full((16, 256 // m), m - n))
        assert not bool(pruned[mask].any())


def test_magnitude_prunes_smallest_over_matrix():
    w = _weight(8, 20)
    pruned, mask = K.prune_magnitude(w, 0.4)
    k = int(w.numel() * 0.4)
    flat = sorted(range(w.numel()), key=lambda i: abs(float(w.reshape(-1)[i])))
    expected = torch.zeros(w.numel(), dtype=torch.bool)
    expected[flat[:k]] = True
    assert torch.equal(mask.reshape(-1), expected)


def _slow_obs(w, h, step, percdamp=0.01, blocksize=None):
    """Column-by-column OBS with an explicit inverse of the remaining Hessian.

    ``step(j, w, d)`` returns the new (quantized / pruned) column j given the
    current weights and ``d[j] = [(H_{j:,j:})^{-1}]_{00}`` for all j.
    """
    w = w.double().clone()
    h = h.double().clone()
    dead = torch.diag(h) == 0
    h[dead, dead] = 1
    w[:, dead] = 0
    h += percdamp * torch.mean(torch.diag(h)) * torch.eye(h.shape[0], dtype=h.dtype)
    cols = w.shape[1]
    inv = [torch.linalg.inv(h[j:, j:]) for j in range(cols)]
    d = torch.tensor([float(inv[j][0, 0]) for j in range(cols)], dtype=torch.float64)
    for j in range(cols):
        q = step(j, w, d)
        err = (w[:, j] - q) / d[j]
        w[:, j:] -= err.unsqueeze(1) * inv[j][0].unsqueeze(0)
        w[:, j] = q
    return w


def test_sparsegpt_matches_slow_obs_reference():
    rows, cols, bs, sp = 8, 48, 16, 0.5
    w = _weight(rows, cols)
    x = _inputs(cols)
    h = _hessian(x)
    masks = {}

    def step(j, cur, d):
        b0 = (j // bs) * bs
        if j == b0:  # choose this block's mask from the current weights
            score = cur[:, b0 : b0 + bs] ** 2 / d[b0 : b0 + bs].unsqueeze(0)
            k = int(score.numel() * sp)
            order = sorted(range(score.numel()), key=lambda i: float(score.reshape(-1)[i]))
            m = torch.zeros(score.numel(), dtype=torch.bool)
            m[order[:k]] = True
            masks[b0] = m.reshape(rows, bs)
        q = cur[:, j].clone()
        q[masks[b0][:, j - b0]] = 0
        return q

    ref = _slow_obs(w, h, step)
    got, mask = K.prune_sparsegpt(w, h, sp, blocksize=bs)
    assert torch.equal(mask, ref == 0)
    torch.testing.assert_close(got.double(), ref, rtol=1e-3, atol=1e-3)


def test_sparsegpt_beats_magnitude_and_wanda():
    x = _inputs(128, 1024)
    w = _weight(32, 128)
    act = K.finalize_sq_norms(*K.accumulate_sq_norms(None, 0, x))
    for structure in (None, "2:4"):
        e_mag = _out_err(w, K.prune_magnitude(w, 0.5, structure)[0], x)
        e_wanda = _out_err(w, K.prune_wanda(w, act, 0.5, structure)[0], x)
        e_sgpt = _out_err(w, K.prune_sparsegpt(w, _hessian(x), 0.5, structure, blocksize=32)[0], x)
        assert e_sgpt < e_wanda < e_mag, (structure, e_sgpt, e_wanda, e_mag)


def test_sparsegpt_unstructured_sparsity_and_dead_inputs():
    x = _inputs(64)
    x[:, 5] = 0  # a dead input feature
    w = _weight(16, 64)
    pruned, mask = K.prune_sparsegpt(w, _hessian(x), 0.6, blocksize=32)
    assert abs(float(mask.float().mean()) - 0.6) < 0.01
    assert not bool(pruned[:, 5].any())


def test_sparsity_zero_keeps_weights():
    w = _weight(8, 32)
    x = _inputs(32)
    assert torch.equal(K.prune_wanda(w, x.pow(2).mean(0), 0.0)[0], w)
    torch.testing.assert_close(K.prune_sparsegpt(w, _hessian(x), 0.0)[0], w)


def test_bad_structure_is_rejected():
    with pytest.raises(ValueError):
        K.parse_structure("4:2")
    with pytest.raises(ValueError):
        K.parse_structure("two:four")
    with pytest.raises(ValueError):
        K.prune_magnitude(_weight(4, 10), structure="2:4")  # 10 columns not divisible by 4


# ---------------------------------------------------------------- quantization
def _assert_on_grid(w_hat, scales, zeros, g_idx, bits):
    maxq = 2**bits - 1
    assert torch.equal(zeros, torch.round(zeros))
    s = scales[:, g_idx]
    z = zeros[:, g_idx]
    q = w_hat / s + z
    assert float((q - torch.round(q)).abs().max()) < 1e-3
    assert float(torch.round(q).min()) >= 0 and float(torch.round(q).max()) <= maxq


def _slow_rtn(w, bits, gs, symmetric):
    # float32 scalar arithmetic, like the kernel, so rounding ties resolve alike
    f32 = np.float32
    maxq = 2**bits - 1
    out = torch.empty_like(w)
    for i in range(w.shape[0]):
        for g0 in range(0, w.shape[1], gs):
            vals = [f32(v) for v in w[i, g0 : g0 + gs].tolist()]
            lo, hi = min(min(vals), f32(0)), max(max(vals), f32(0))
            if symmetric:
                hi = max(abs(lo), hi)
                lo = -hi
            scale = f32(hi - lo) / f32(maxq)
            zero = (maxq + 1) // 2 if symmetric else int(np.rint(-lo / scale))
            for j, v in enumerate(vals):
                q = min(max(int(np.rint(v / scale)) + zero, 0), maxq)
                out[i, g0 + j] = float(scale * f32(q - zero))
    return out


@pytest.mark.parametrize("bits,gs,symmetric", [(4, 16, False), (3, 32, True), (8, 64, False), (2, 8, False)])
def test_rtn_matches_definition_and_grid(bits, gs, symmetric):
    w = _weight(6, 64)
    w_hat, scales, zeros, g_idx = K.quantize_rtn(w, bits, gs, symmetric)
    torch.testing.assert_close(w_hat, _slow_rtn(w, bits, gs, symmetric), rtol=1e-5, atol=1e-6)
    _assert_on_grid(w_hat, scales, zeros, g_idx, bits)
    assert scales.shape == (6, 64 // gs)


@pytest.mark.parametrize("act_order", [False, True])
@pytest.mark.parametrize("symmetric", [False, True])
def test_gptq_on_grid(act_order, symmetric):
    x = _inputs(64)
    w = _weight(12, 64)
    w_hat, scales, zeros, g_idx, loss = K.quantize_gptq(
        w, _hessian(x), 3, 16, act_order=act_order, symmetric=symmetric, blocksize=32
    )
    _assert_on_grid(w_hat, scales, zeros, g_idx, 3)
    assert loss > 0
    assert torch.equal(torch.bincount(g_idx), torch.full((4,), 16))
    if act_order:
        assert not torch.equal(g_idx, torch.arange(64) // 16)


@pytest.mark.parametrize("act_order", [False, True])
def test_gptq_matches_slow_obs_reference(act_order):
    bits, gs = 4, 8
    maxq = 2**bits - 1
    x = _inputs(32)
    w = _weight(6, 32)
    h = _hessian(x)
    perm = torch.argsort(torch.diag(h), descending=True) if act_order else torch.arange(32)
    params = {}

    def step(j, cur, d):
        g = j // gs
        if j % gs == 0:
            params[g] = K.quant_params(cur[:, j : j + gs].float(), bits)
        s, z = (p.double() for p in params[g])
        return s * (torch.clamp(torch.round(cur[:, j] / s) + z, 0, maxq) - z)

    ref_perm = _slow_obs(w[:, perm], h[perm][:, perm], step)
    ref = torch.empty_like(ref_perm)
    ref[:, perm] = ref_perm
    got = K.quantize_gptq(w, h, bits, gs, act_order=act_order, blocksize=16)[0]
    close = (got.double() - ref).abs() < 1e-4
    assert float(close.float().mean()) > 0.97  # a rare rounding tie may flip a step


def test_gptq_beats_rtn():
    x = _inputs(128, 1024)
    w = _weight(32, 128)
    for bits, gs in ((4, 32), (3, None), (3, 16)):
        e_rtn = _out_err(w, K.quantize_rtn(w, bits, gs)[0], x)
        e_gptq = _out_err(w, K.quantize_gptq(w, _hessian(x), bits, gs, blocksize=32)[0], x)
        assert e_gptq < e_rtn, (bits, gs, e_gptq, e_rtn)
        e_ao = _out_err(w, K.quantize_gptq(w, _hessian(x), bits, gs, act_order=True)[0], x)
        assert e_ao < e_rtn


def test_gptq_8bit_close_to_rtn():
    x = _inputs(64)
    w = _weight(16, 64)
    rtn = K.quantize_rtn(w, 8, 32)[0]
    gptq = K.quantize_gptq(w, _hessian(x), 8, 32)[0]
    scale = float(w.abs().max()) / 127
    assert float((rtn - gptq).abs().max()) < 4 * scale
    # both are tiny perturbations of W, of the same size as the 8-bit rounding noise
    assert float(torch.linalg.norm(rtn - gptq) / torch.linalg.norm(w)) < 0.03
    assert float(torch.linalg.norm(gptq - w) / torch.linalg.norm(w)) < 0.02
    e_rtn, e_gptq = _out_err(w, rtn, x), _out_err(w, gptq, x)
    assert e_gptq <= e_rtn
    assert e_rtn < 0.01 * float(torch.linalg.norm(x @ w.t()))


def test_quant_bits_range_checked():
    with pytest.raises(ValueError):
        K.quantize_rtn(_weight(2, 8), bits=1)
    with pytest.raises(ValueError):
        K.quantize_rtn(_weight(2, 8), bits=9)


# ---------------------------------------------------------------- OWL
def test_outlier_ratio_matches_count():
    g = torch.Generator().manual_seed(3)
    a = torch.rand(10, 10, generator=g)
    b = torch.rand(5, 7, generator=g) * 40
    vals = [float(v) for v in itertools.chain(a.reshape(-1), b.reshape(-1))]
    mean = sum(vals) / len(vals)
    expected = sum(v > 2.0 * mean for v in vals) / len(vals)
    assert K.outlier_ratio([a, b], m=2.0) == pytest.approx(expected)


def test_owl_layer_sparsities():
    ratios = [0.01, 0.05, 0.02, 0.03]
    sp = K.owl_layer_sparsities(ratios, 0.6, lam=0.08)
    assert sum(sp) / len(sp) == pytest.approx(0.6)
    assert max(sp) - min(sp) == pytest.approx(0.16)
    # more outliers -> lower sparsity
    assert sorted(range(4), key=lambda i: sp[i]) == sorted(range(4), key=lambda i: -ratios[i])
    assert K.owl_layer_sparsities([0.1, 0.1], 0.5) == [0.5, 0.5]

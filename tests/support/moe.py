"""Tiny random MoE models (Mixtral, Qwen2-MoE, Qwen3-MoE) and padded batches for
the MoE tests."""

from __future__ import annotations

import torch

VOCAB = 320


def moe_model(kind: str, vocab_size: int = VOCAB, experts: int = 4, seed: int = 0):
    """A 2-layer top-2 MoE model (hidden 32) of ``kind``: mixtral | qwen2_moe | qwen3_moe."""
    import transformers as tf

    torch.manual_seed(seed)
    common = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_experts_per_tok=2,
        max_position_embeddings=256,
        eos_token_id=0,
        pad_token_id=1,
        bos_token_id=None,
    )
    if kind == "mixtral":
        model = tf.MixtralForCausalLM(tf.MixtralConfig(num_local_experts=experts, **common))
    elif kind == "qwen2_moe":
        cfg = tf.Qwen2MoeConfig(
            num_experts=experts, moe_intermediate_size=32, shared_expert_intermediate_size=64, **common
        )
        model = tf.Qwen2MoeForCausalLM(cfg)
    elif kind == "qwen3_moe":
        cfg = tf.Qwen3MoeConfig(num_experts=experts, moe_intermediate_size=32, norm_topk_prob=True, **common)
        model = tf.Qwen3MoeForCausalLM(cfg)
    else:  # pragma: no cover
        raise ValueError(kind)
    return model.eval()


def kill_expert(model, layer: int, dead: int) -> None:
    """Make expert ``dead`` of ``layer`` unreachable under top-2 routing whatever the input:
    its router row is zero (logit 0) and the other rows come in +/- pairs, so each pair
    has a logit >= 0 and two pairs give two logits above the dead one's."""
    w = model.model.layers[layer].mlp.gate.weight
    with torch.no_grad():
        n = w.shape[0]
        for a in range(0, n - 1, 2):
            if dead in (a, a + 1):
                continue
            w[a + 1] = -w[a]
        w[dead] = 0.0
    assert sum(1 for a in range(0, n - 1, 2) if dead not in (a, a + 1)) >= 2


def padded_batch(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, VOCAB, (5, 24), generator=g)
    lengths = [24, 17, 9, 24, 3]
    mask = torch.zeros_like(ids)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    ids[mask == 0] = 1
    return {"input_ids": ids, "attention_mask": mask}, lengths

"""A small byte-level BPE tokenizer trained here, for tests that need a real
``tokenizer.json`` without a download."""

from __future__ import annotations

from typing import Iterable


def train_bpe(texts: Iterable[str], vocab_size: int = 320):
    """A ``tokenizers.Tokenizer`` (byte-level BPE with ``<eos>`` and ``<pad>``) trained on ``texts``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<eos>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer)
    return tok

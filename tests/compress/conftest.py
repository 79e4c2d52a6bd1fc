"""Shared fixtures for the compression tests: tiny random models and a tiny tokenizer."""

from __future__ import annotations

import os
import pydoc_data.topics

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

torch.set_num_threads(2)

# The toolkit hand-off tests need llm-compressor, auto-round and GPTQModel installed
# by scripts/toolkits.sh; scripts/test.sh runs them in a step of their own.
collect_ignore = [] if os.environ.get("ZIPCAL_TOOLKITS") == "1" else ["test_toolkits.py"]

REPO_ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
WIKITEXT_DIR = (REPO_ROOT / ".." / "shared" / "data" / "wikitext-2").resolve()


def corpus_texts(n: int = 40) -> list:
    """English paragraphs from Python's own documentation (present on every Python)."""
    texts = [t.strip() for t in pydoc_data.topics.topics.values() if len(t.strip()) > 400]
    return sorted(texts)[:n]


def build_tokenizer(vocab_size: int = 320):
    """A byte-level BPE trained locally on the documentation texts."""
    from support.bpe import train_bpe
    from transformers import PreTrainedTokenizerFast

    tok = train_bpe(corpus_texts(200), vocab_size)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>")


def tiny_model(kind: str, vocab_size: int = 320, seed: int = 0):
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        LlamaConfig,
        LlamaForCausalLM,
        OPTConfig,
        OPTForCausalLM,
    )

    torch.manual_seed(seed)
    if kind == "llama":
        cfg = LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=256,
            bos_token_id=None,
            eos_token_id=0,
            pad_token_id=1,
        )
        model = LlamaForCausalLM(cfg)
    elif kind == "gpt2":
        cfg = GPT2Config(
            vocab_size=vocab_size, n_embd=64, n_layer=2, n_head=4, n_positions=256, bos_token_id=0, eos_token_id=0
        )
        model = GPT2LMHeadModel(cfg)
    elif kind == "opt":
        cfg = OPTConfig(
            vocab_size=vocab_size,
            hidden_size=64,
            ffn_dim=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=256,
            word_embed_proj_dim=64,
            bos_token_id=0,
            eos_token_id=0,
            pad_token_id=1,
        )
        model = OPTForCausalLM(cfg)
    else:  # pragma: no cover
        raise ValueError(kind)
    return model.eval()


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return build_tokenizer()


@pytest.fixture()
def calib_batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(2, 320, (8, 32), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 20:] = 0
    mask[5, 9:] = 0
    ids[mask == 0] = 1
    return {"input_ids": ids, "attention_mask": mask}


@pytest.fixture()
def make_model():
    """``make_model(kind, vocab_size=320)`` -> tiny random model (llama | gpt2 | opt)."""
    return tiny_model


@pytest.fixture(scope="session")
def doc_texts():
    """A few dozen English paragraphs (Python documentation)."""
    return corpus_texts(40)


@pytest.fixture()
def calib_file(tmp_path, doc_texts):
    """Six documents in a Parquet file with a ``text`` column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "calib.parquet"
    pq.write_table(pa.table({"text": doc_texts[:6]}), p)
    return p

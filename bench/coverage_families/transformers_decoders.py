"""PyTorch: today's decoder language models (and ModernBERT), whose rotary position embeddings the
dynamo exporter fuses into ONNX ``RotaryEmbedding`` at opset 23 (issue 15: onnxruntime refuses that
node at run time, so "auto" must fall back to the opset that reproduces).

Llama, Mistral, Qwen2, Qwen3, Phi3, Gemma2, GPT-NeoX, Falcon, OPT, ModernBERT from small configs
(hidden size 32, 2 layers, grouped-query attention where the architecture has it) and a Llama of
SmolLM-135M's size (576 hidden, 30 layers, 9 heads over 3 key-value heads, 49,152 tokens); random
weights, nothing downloaded. Each as a ``.pt2`` (batch and sequence dynamic) and as a state_dict with
a --model-class factory, built and re-checked as the ``pytorch`` family's transformers models are:
``input_ids`` and a right-padded ``attention_mask``, validated at sequence lengths 32 and 40 by the
converter and re-checked on new padded inputs at batch 37, length 24. ``use_cache`` is off: a
``DynamicCache`` output is no tensor, and neither exporter takes it.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from bench.coverage_families import ModelCase
from bench.coverage_families.pytorch import FORMATS, MAX_POSITIONS, VOCAB, Arch, build_transformers

SMALL = {
    "vocab_size": VOCAB,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "max_position_embeddings": MAX_POSITIONS,
    "use_cache": False,
}
GQA = {**SMALL, "num_key_value_heads": 2}
IDS_MASK = ("input_ids", "attention_mask")
SMOLLM = {
    "vocab_size": 49152,
    "hidden_size": 576,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "intermediate_size": 1536,
    "max_position_embeddings": 2048,
    "tie_word_embeddings": True,
    "use_cache": False,
}


def _decoder(name: str, prefix: str, config: dict[str, Any]) -> Arch:
    return Arch(
        name, f"{prefix}Model", f"{prefix}Config", config, IDS_MASK, {"input_ids": "ids", "attention_mask": "mask"}
    )


ARCHS = (
    _decoder("Llama", "Llama", GQA),
    _decoder("Mistral", "Mistral", GQA),
    _decoder("Qwen2", "Qwen2", GQA),
    _decoder("Qwen3", "Qwen3", {**GQA, "head_dim": 8}),
    _decoder("Phi3", "Phi3", {**GQA, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}),
    _decoder("Gemma2", "Gemma2", {**GQA, "head_dim": 8, "query_pre_attn_scalar": 8}),
    _decoder("GPT-NeoX", "GPTNeoX", {**SMALL}),
    _decoder("Falcon", "Falcon", {k: v for k, v in SMALL.items() if k != "intermediate_size"}),
    _decoder(
        "OPT",
        "OPT",
        {**{k: v for k, v in SMALL.items() if k != "intermediate_size"}, "ffn_dim": 64, "word_embed_proj_dim": 32},
    ),
    _decoder("SmolLM-135M-sized Llama", "Llama", SMOLLM),
    _decoder(
        "ModernBERT",
        "ModernBert",
        {
            **{k: v for k, v in SMALL.items() if k != "use_cache"},
            "pad_token_id": 0,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "cls_token_id": 1,
            "sep_token_id": 2,
            "local_attention": 16,
        },
    ),
)


def models() -> list[ModelCase]:
    return [
        ModelCase(
            f"{arch.name} ({fmt})",
            partial(build_transformers, arch, fmt),
            group="decoders (rotary, or OPT's learned positions)",
        )
        for arch in ARCHS
        for fmt in FORMATS
    ]

"""Tiny models with the calling conventions and attention code of Hugging Face transformers.

Also the --model-class file of tests/test_pytorch_attention.py (imported there by path).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

VOCAB = 37
WIDTH, HEADS = 16, 2


class PaddedEncoder(nn.Module):
    """forward(input_ids, past_key_values=None, attention_mask=None), like GPT2Model's.

    An optional parameter sits between the two inputs a user gives, so they cannot be passed by
    position; the output is a dict, like a ModelOutput.
    """

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, WIDTH)
        self.head = nn.Linear(WIDTH, 3)

    def forward(
        self,
        input_ids: torch.Tensor,
        past_key_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        hidden = self.embed(input_ids)
        if past_key_values is not None:
            hidden = hidden + past_key_values
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return {"last_hidden_state": hidden, "pooler_output": self.head(pooled)}


class BiasedSelfAttention(nn.Module):
    """Self-attention with a learned relative position bias added to the scores, as T5 computes it.

    After scaled_dot_product_attention comes Hugging Face's
    ``reshape(...).transpose(1, 2).contiguous()`` and a reshape to (batch, seq, width).
    """

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, WIDTH)
        self.qkv = nn.Linear(WIDTH, 3 * WIDTH)
        self.bias = nn.Embedding(8, HEADS)  # one learned bias per head and clipped distance
        self.out = nn.Linear(WIDTH, WIDTH)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        hidden = self.embed(input_ids)
        batch, seq, _ = hidden.shape
        head = WIDTH // HEADS
        q, k, v = self.qkv(hidden).view(batch, seq, 3, HEADS, head).permute(2, 0, 3, 1, 4)
        position = torch.arange(seq)
        distance = (position[None, :] - position[:, None]).abs().clamp(max=7)
        bias = self.bias(distance).permute(2, 0, 1).unsqueeze(0)
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        attended = attended.reshape(attended.shape[0], -1, seq, head).transpose(1, 2).contiguous()
        return self.out(attended.reshape(batch, seq, -1))

"""The nn.Module classes of the PyTorch examples: what --model-class points at for a state_dict.

    onnx-convert --model-path examples/models/moons_mlp.pt \\
        --model-class examples/pytorch_model_classes.py:MoonsMLP --input-shapes batchx2
"""

from __future__ import annotations

import torch
from torch import nn

VOCAB = 50
SEQ = 16


class MoonsMLP(nn.Module):
    """Two-moons classifier: 2 features in, 2 logits out."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.net(points)


class SquareFinder(nn.Module):
    """Small CNN with BatchNorm and pooling: is the bright square in the top or bottom half of a 16x16 image?"""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
        )
        self.head = nn.Linear(64, 2)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(image).flatten(1))


class TokenClassifier(nn.Module):
    """nn.TransformerEncoder over int64 token ids: does the sequence contain token 7?"""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 32)
        layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.classify = nn.Linear(32, 2)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.classify(self.encoder(self.embed(tokens)).mean(1))


class Ranker(nn.Module):
    """Two inputs (item ids, dense features), two named outputs (a dict)."""

    def __init__(self) -> None:
        super().__init__()
        self.items = nn.Embedding(100, 8)
        self.dense = nn.Linear(4, 8)
        self.score_head = nn.Linear(16, 1)

    def forward(self, item_ids: torch.Tensor, features: torch.Tensor) -> dict[str, torch.Tensor]:
        joined = torch.cat([self.items(item_ids).mean(1), torch.relu(self.dense(features))], dim=1)
        return {"score": self.score_head(joined).squeeze(1), "embedding": joined}

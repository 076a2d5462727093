"""Small real PyTorch models for the tests, and the code that trains and saves them.

This file is also the --model-class file the tests pass (``tests/pytorch_models.py:MLP``): it is
imported by path there, and as ``tests.pytorch_models`` when a test pickles a whole module.
"""

from __future__ import annotations

import torch
from torch import nn

VOCAB = 37  # below the 0..99 range used when no embedding is found: ids >= 37 would crash the model
SEQ = 12


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(16, 5)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(image).flatten(1))


def make_cnn() -> SmallCNN:
    """A zero-argument factory, the other form --model-class accepts."""
    return SmallCNN()


class LSTMTagger(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(6, 10, batch_first=True)
        self.out = nn.Linear(10, 4)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.lstm(sequence)
        return self.out(hidden)


class TokenTransformer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 16)
        layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.classify = nn.Linear(16, 3)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.classify(self.encoder(self.embed(tokens)).mean(1))


class TwoInTwoOut(nn.Module):
    """Token ids and dense features in; a dict of two outputs, keys not in sorted order."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 8)
        self.dense = nn.Linear(3, 8)
        self.score = nn.Linear(16, 1)

    def forward(self, ids: torch.Tensor, features: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = torch.cat([self.embed(ids).mean(1), self.dense(features)], dim=1)
        return {"score": torch.sigmoid(self.score(pooled)), "embedding": pooled}


class ValueBranch(nn.Module):
    """A data-dependent Python branch: neither exporter can trace both sides."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        if y.sum() > 0:
            return y * 2
        return y - 1


class FixedBatch(nn.Module):
    """Reads the batch size as a Python int: the export fixes it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = int(x.shape[0])
        return self.fc(x).reshape(rows, 2, 2)


class Eigenvalues(nn.Module):
    """torch.linalg.eigvals has no ONNX translation in either exporter."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.eigvals(self.fc(x).reshape(-1, 4, 4)).real


class NeedsArguments(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc = nn.Linear(4, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def train(model: nn.Module, inputs: tuple[torch.Tensor, ...], steps: int = 20) -> nn.Module:
    """A few Adam steps on a random target, so weights and BatchNorm statistics are not the initial ones."""
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        output = model(*inputs)
        tensor = output if isinstance(output, torch.Tensor) else next(iter(output.values()))
        loss = (tensor - 0.5).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def trained(name: str) -> nn.Module:
    """One of the models above, trained briefly, with fixed seeds."""
    torch.manual_seed(0)
    if name == "mlp":
        return train(MLP(), (torch.randn(64, 4),))
    if name == "cnn":
        return train(SmallCNN(), (torch.randn(16, 3, 16, 16),))
    if name == "lstm":
        return train(LSTMTagger(), (torch.randn(16, 7, 6),))
    if name == "transformer":
        return train(TokenTransformer(), (torch.randint(0, VOCAB, (16, SEQ)),), steps=5)
    if name == "two_in_two_out":
        return train(TwoInTwoOut(), (torch.randint(0, 20, (16, 6)), torch.randn(16, 3)))
    raise KeyError(name)


class LargeValues(nn.Module):
    """Intermediate values near 1e5, beyond float16's 65504: a float16 graph overflows to inf."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 8)
        self.out = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.fc(x) * 1e5) * 1e-5)

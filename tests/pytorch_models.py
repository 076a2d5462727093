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


class ShapeGuarded(nn.Module):
    """Exported with two dynamic batches, it carries what torch evaluates when it loads a .pt2: shape
    expressions (FloorDiv, Pow), a guard on both inputs' sizes, and a torch.cond (a higher-order operator)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z = torch.cond(x.sum() > 0, lambda t: self.linear(t), lambda t: -t, (x,))
        return torch.cat([z, y], 0)[: x.shape[0] * 2 // 3] + x.shape[0] ** 2


class Scale(nn.Module):
    """A submodule whose state torch.jit.load restores by running its __setstate__, which only sets tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.factor = torch.full((3,), 2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor

    @torch.jit.export
    def __getstate__(self) -> tuple[torch.Tensor, bool]:
        return (self.factor, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[torch.Tensor, bool]) -> None:
        self.factor = state[0] * 1.0
        self.training = state[1]


class Checked(nn.Module):
    """Scripted or traced, it carries what the TorchScript check lets through: submodules, BatchNorm,
    a loop, a branch on a value, and a __setstate__ (Scale)."""

    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU())
        self.head = nn.Linear(8, 3)
        self.scale = Scale()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.block(x)
        for _ in range(2):
            h = h + 0.5
        if bool(h.mean() > 0):
            h = h * 0.5
        return self.scale(self.head(h))


class QuantizableCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.quant = torch.ao.quantization.QuantStub()
        self.conv = nn.Conv2d(3, 4, 3)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(4, 2)
        self.dequant = torch.ao.quantization.DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv(self.quant(x)))
        return self.dequant(self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)))


def quantized_cnn() -> nn.Module:
    """QuantizableCNN with int8 weights (eager post-training quantization): its conv and linear hold
    their weights in torch.classes.quantized.*PackedParamsBase and call ops.quantized.*."""
    torch.manual_seed(0)
    model = QuantizableCNN().eval()
    model.qconfig = torch.ao.quantization.get_default_qconfig("x86")
    prepared = torch.ao.quantization.prepare(model)
    prepared(torch.randn(16, 3, 8, 8))
    return torch.ao.quantization.convert(prepared)


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
    if name == "checked":
        return train(Checked(), (torch.randn(64, 4),))
    raise KeyError(name)


class LargeValues(nn.Module):
    """Intermediate values near 1e5, beyond float16's 65504: a float16 graph overflows to inf."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 8)
        self.out = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.fc(x) * 1e5) * 1e-5)

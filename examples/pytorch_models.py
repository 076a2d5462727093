"""Small PyTorch example models, one per saved format: state_dict, TorchScript, torch.export, safetensors."""

from __future__ import annotations

import os
from pathlib import Path

CLASSES = Path(__file__).resolve().parent / "pytorch_model_classes.py"


def build(out_dir: Path) -> list[tuple[Path, list[str]]]:
    """Train the examples; return (model path, extra CLI arguments) for each."""
    import torch
    from safetensors.torch import save_file
    from torch import nn

    from examples import pytorch_model_classes as pmc

    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    classes = os.path.relpath(CLASSES)  # --model-class is relative to the working directory

    def fit(model: nn.Module, inputs: tuple[torch.Tensor, ...], target: torch.Tensor, steps: int) -> nn.Module:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        model.train()
        for _ in range(steps):
            out = model(*inputs)
            logits = out if isinstance(out, torch.Tensor) else out["score"]
            if target.dtype == torch.int64:
                loss = nn.functional.cross_entropy(logits, target)
            else:
                loss = nn.functional.mse_loss(logits, target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return model.eval()

    # Two moons, as a state_dict (.pt) + --model-class.
    angle = torch.rand(512) * torch.pi
    upper = torch.rand(512) < 0.5
    points = torch.stack([torch.cos(angle) + (~upper) * 1.0, torch.sin(angle) * (upper * 2 - 1) + (~upper) * 0.5], 1)
    moons = fit(pmc.MoonsMLP(), (points + 0.1 * torch.randn_like(points),), (~upper).long(), 200)
    torch.save(moons.state_dict(), out_dir / "moons_mlp.pt")

    # Bright square in the top or bottom half, as a TorchScript archive.
    images = torch.rand(256, 1, 16, 16) * 0.2
    bottom = torch.rand(256) < 0.5
    for i in range(256):
        row = 8 + int(torch.randint(0, 5, ())) if bottom[i] else int(torch.randint(0, 5, ()))
        col = int(torch.randint(0, 12, ()))
        images[i, 0, row : row + 3, col : col + 3] = 1.0
    finder = fit(pmc.SquareFinder(), (images,), bottom.long(), 60)
    torch.jit.save(torch.jit.script(finder), str(out_dir / "square_finder_torchscript.pt"))

    # Token ids through nn.Embedding + nn.TransformerEncoder, as a torch.export program with a dynamic batch.
    tokens = torch.randint(0, pmc.VOCAB, (64, pmc.SEQ))
    has_seven = (tokens == 7).any(1)
    classifier = fit(pmc.TokenClassifier(), (tokens,), has_seven.long(), 15)  # attention is slow on CPU: keep it short
    program = torch.export.export(classifier, (tokens[:4],), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, str(out_dir / "token_classifier.pt2"))

    # Two inputs and two dict outputs, as safetensors + --model-class.
    item_ids = torch.randint(0, 100, (256, 5))
    features = torch.randn(256, 4)
    relevance = features[:, 0] + (item_ids < 10).float().mean(1)
    ranker = fit(pmc.Ranker(), (item_ids, features), relevance, 100)
    save_file(ranker.state_dict(), str(out_dir / "ranker.safetensors"))

    return [
        (out_dir / "moons_mlp.pt", ["--model-class", f"{classes}:MoonsMLP", "--input-shapes", "batchx2"]),
        # TorchScript: its code is checked to hold only tensor operations before torch.jit.load runs it.
        (out_dir / "square_finder_torchscript.pt", ["--input-shapes", "batchx1x16x16"]),
        (out_dir / "token_classifier.pt2", []),
        (
            out_dir / "ranker.safetensors",
            [
                "--model-class",
                f"{classes}:Ranker",
                "--input-shapes",
                "item_ids:batchx5;features:batchx4",
                "--input-dtypes",
                "item_ids:int64",
            ],
        ),
    ]

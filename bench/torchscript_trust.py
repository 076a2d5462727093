"""Does the TorchScript check (converter/frameworks/pytorch/torchscript_code.py) pass every legit model, and what does it cost?

    python bench/torchscript_trust.py            # vision models scripted and traced, torch.nn's modules, a quantized CNN
    python bench/torchscript_trust.py --keep DIR # and keep the archives in DIR

Saves each model with torch.jit.save and checks the archive, without loading or converting it:
the classic vision models of bench/coverage_families/_pytorch_vision.py (ResNet-50,
MobileNetV3-Large, ConvNeXt-T, a small ViT) scripted and traced, every torch.nn module that
builds from small arguments, scripted, and an int8 quantized CNN. For each vision archive it
prints the CPU time of the check next to that of torch.jit.load (median of 5, warm). Run it after
upgrading torch: a refused model names what to review. Exit 1 if any is refused.
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.coverage_families import _pytorch_vision as vision
from converter.errors import UserError
from converter.frameworks.pytorch.torchscript_code import check_archive
from tests.fixtures import pytorch_models as pm

VISION = {"resnet50": 224, "mobilenet_v3_large": 224, "convnext_tiny": 224, "small_vit": 224}
# Constructor arguments of the torch.nn modules that need some; the others build without.
NN_ARGS: dict[str, tuple] = {
    "Linear": (4, 4), "Bilinear": (4, 4, 4), "Conv1d": (3, 4, 3), "Conv2d": (3, 4, 3), "Conv3d": (3, 4, 3),
    "ConvTranspose1d": (3, 4, 3), "ConvTranspose2d": (3, 4, 3), "ConvTranspose3d": (3, 4, 3),
    "BatchNorm1d": (4,), "BatchNorm2d": (4,), "BatchNorm3d": (4,), "InstanceNorm1d": (4,), "InstanceNorm2d": (4,),
    "InstanceNorm3d": (4,), "LayerNorm": (4,), "GroupNorm": (2, 4), "RMSNorm": (4,), "LocalResponseNorm": (2,),
    "Embedding": (10, 4), "EmbeddingBag": (10, 4), "LSTM": (4, 4), "GRU": (4, 4), "RNN": (4, 4),
    "LSTMCell": (4, 4), "GRUCell": (4, 4), "RNNCell": (4, 4), "MultiheadAttention": (8, 2),
    "TransformerEncoderLayer": (8, 2), "TransformerDecoderLayer": (8, 2), "Transformer": (8, 2, 1, 1, 16),
    "MaxPool1d": (2,), "MaxPool2d": (2,), "MaxPool3d": (2,), "AvgPool1d": (2,), "AvgPool2d": (2,),
    "AvgPool3d": (2,), "LPPool1d": (2, 2), "LPPool2d": (2, 2), "AdaptiveAvgPool1d": (1,),
    "AdaptiveAvgPool2d": (1,), "AdaptiveAvgPool3d": (1,), "AdaptiveMaxPool1d": (1,), "AdaptiveMaxPool2d": (1,),
    "FractionalMaxPool2d": (2,), "Upsample": (None, 2), "PixelShuffle": (2,), "PixelUnshuffle": (2,),
    "Softmax": (1,), "LogSoftmax": (1,), "Softmin": (1,), "Unflatten": (1, (2, 2)), "Fold": ((4, 4), 2),
    "Unfold": (2,), "ZeroPad2d": (1,), "ConstantPad1d": (1, 0.5), "ReflectionPad2d": (1,),
    "ReplicationPad2d": (1,), "CircularPad2d": (1,), "Threshold": (0.1, 0.0), "ChannelShuffle": (2,),
}  # fmt: skip


def _script(build: Callable[[], nn.Module]) -> torch.jit.ScriptModule:
    return torch.jit.script(build().eval())


def _trace(build: Callable[[], nn.Module], size: int) -> torch.jit.ScriptModule:
    return torch.jit.trace(build().eval(), torch.randn(1, 3, size, size))


def programs() -> list[tuple[str, Callable[[], torch.jit.ScriptModule]]]:
    """(name, build) for every archive to check."""
    found: list[tuple[str, Callable[[], torch.jit.ScriptModule]]] = []
    for name, size in VISION.items():
        found.append((f"{name} scripted", partial(_script, getattr(vision, name))))
        found.append((f"{name} traced", partial(_trace, getattr(vision, name), size)))
    for name, cls in sorted(vars(nn).items()):
        if inspect.isclass(cls) and issubclass(cls, nn.Module) and not name.startswith(("_", "Lazy")):
            found.append((f"nn.{name}", partial(_script, partial(cls, *NN_ARGS.get(name, ())))))
    found.append(("quantized CNN", partial(_script, pm.quantized_cnn)))
    return found


def median_ms(action: Callable[[], object]) -> float:
    """CPU milliseconds of this process (all its threads): on a shared machine, wall time measures the others."""
    action()
    times = []
    for _ in range(5):
        start = time.process_time()
        action()
        times.append(time.process_time() - start)
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="directory for the archives (default: a temporary one)")
    args = parser.parse_args()
    directory = args.keep or Path(tempfile.mkdtemp(prefix="torchscript-trust-"))
    directory.mkdir(parents=True, exist_ok=True)
    checked, refused = 0, 0
    for name, build in programs():
        path = directory / f"{name.replace(' ', '_').replace('.', '_')}.pt"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.jit.save(build(), str(path))
        except Exception:  # a module TorchScript cannot compile, or that needs other arguments
            continue
        checked += 1
        try:
            check_archive(torch, path)
        except UserError as exc:
            refused += 1
            print(f"refused {name}: {exc.message}")
            continue
        if name.split()[0] in VISION:
            check = median_ms(partial(check_archive, torch, path))
            load = median_ms(partial(torch.jit.load, str(path)))
            size = path.stat().st_size / 1024**2
            print(f"{name}: {size:.0f} MB, check {check:.0f} ms, torch.jit.load {load:.0f} ms (CPU)")
    print(f"{checked - refused} of {checked} TorchScript archives pass the check")
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main())

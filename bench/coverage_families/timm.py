"""timm: classic CNNs, mobile nets, vision transformers, hybrids and modern convnets.

Each architecture is built with ``timm.create_model(name, pretrained=False)`` (random weights,
nothing downloaded) at its default input size (``pretrained_cfg["input_size"]``), then given
weights a check can tell apart (``_perturb``), and saved the two ways a user has: a torch.export
program (``.pt2``, dynamic batch) and a state_dict with a ``--model-class`` file whose factory
calls ``timm.create_model``. The re-check feeds the eager model new images at a third batch size.

timm imports torchvision, and PyPI's torchvision for this torch is a CUDA build whose C ops do
not load (``operator torchvision::nms does not exist`` at import). None of timm's classification
models calls them, so ``import_timm`` imports torchvision from bench/.torchvision (make coverage
installs it there, out of the venv: there it would break transformers' vision models) with the
module that registers the C ops' fake kernels left out, in the model's child process only.
"""

from __future__ import annotations

import sys
import types
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bench.coverage_families import Built, Inputs, ModelCase, SkipCase, import_beside

TORCHVISION_DIR = Path(__file__).resolve().parent.parent / ".torchvision"
RECHECK_BATCH = 3  # validation runs 16 and 8 rows; 224x224 ViTs are slow at 37
NOISE = 0.1  # relative size of the noise given to constant-initialised parameters

ARCHS: dict[str, tuple[str, ...]] = {
    "classic CNNs": (
        "resnet18",
        "resnet50",
        "resnext50_32x4d",
        "densenet121",
        "regnetx_002",
        "regnety_004",
        "efficientnet_b0",
        "mobilenetv2_100",
        "mobilenetv3_large_100",
        "ghostnet_100",
        "inception_v3",
        "dla34",
        "cspresnet50",
        "res2net50_26w_4s",
    ),
    "vision transformers": (
        "vit_tiny_patch16_224",
        "deit_tiny_patch16_224",
        "swin_tiny_patch4_window7_224",
        "beit_base_patch16_224",
        "eva02_tiny_patch14_224",
        "cait_xxs24_224",
        "xcit_nano_12_p16_224",
        "pit_ti_224",
    ),
    "hybrids and modern convnets": (
        "convnext_atto",
        "convnextv2_atto",
        "efficientformer_l1",
        "efficientformerv2_s0",
        "levit_128s",
        "mobilevit_xxs",
        "mobilevitv2_050",
        "fastvit_t8",
        "maxvit_nano_rw_256",
        "coatnet_nano_rw_224",
        "repvit_m1",
        "edgenext_xx_small",
        "poolformer_s12",
        "tiny_vit_5m_224",
    ),
}
FORMATS = ("pt2", "state_dict")


def models() -> list[ModelCase]:
    return [
        ModelCase(f"{arch} ({fmt})", partial(_build, arch, fmt), group=group)
        for group, archs in ARCHS.items()
        for arch in archs
        for fmt in FORMATS
    ]


def import_timm() -> Any:
    """timm, with torchvision's pure-Python parts (see the module's docstring)."""
    # torchvision/__init__ imports _meta_registrations, which registers fake kernels for its C ops
    # and fails when they are not loaded; an empty module in its place skips only that.
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
    return import_beside(TORCHVISION_DIR, "timm")


def build_model(arch: str) -> Any:
    """The architecture with random weights that exercise every branch, in eval mode."""
    import torch

    timm = import_timm()
    torch.manual_seed(0)
    model = timm.create_model(arch, pretrained=False)
    _perturb(model, torch.Generator().manual_seed(1))
    return model.eval()


def _perturb(model: Any, generator: Any) -> None:
    """timm zero-initialises whole branches (the last norm of each residual block, layer scale 1e-6):
    with those weights a block is the identity and the check compares nearly constant outputs. Every
    parameter whose elements are all equal gets noise; BatchNorm statistics come from a random batch
    (a cumulative average), which keeps activations at the scale of a trained model."""
    import torch

    size = model.pretrained_cfg["input_size"]
    with torch.no_grad():
        for parameter in model.parameters():
            flat = parameter.detach().flatten()
            if flat.numel() > 1 and bool((flat == flat[0]).all()):
                scale = NOISE * max(abs(float(flat[0])), 1.0)
                parameter.add_(scale * torch.randn(parameter.shape, generator=generator))
        norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        if norms:
            for norm in norms:
                norm.reset_running_stats()
                norm.momentum = None
            model.train()
            model(torch.randn(4, *size, generator=generator))


def _build(arch: str, fmt: str, directory: Path) -> Built:
    import torch

    model = build_model(arch)
    size = tuple(model.pretrained_cfg["input_size"])
    if fmt == "pt2":
        path = directory / "model.pt2"
        example = (torch.randn(2, *size),)
        try:
            with torch.no_grad():
                program = torch.export.export(model, example, dynamic_shapes=({0: torch.export.Dim("batch")},))
        except Exception as exc:  # the user's own step: nothing of the converter's is tried
            raise SkipCase(f"torch.export with a dynamic batch fails: {type(exc).__name__}") from None
        torch.export.save(program, str(path))
        options = {"model-path": str(path)}
    else:
        path = directory / "model.pt"
        torch.save(model.state_dict(), path)
        class_file = directory / "model_class.py"
        class_file.write_text(
            '"""The --model-class file for model.pt (written by bench/coverage_families/timm.py)."""\n\n'
            f"import timm\n\n\ndef build():\n    return timm.create_model({arch!r}, pretrained=False)\n",
            encoding="utf-8",
        )
        options = {
            "model-path": str(path),
            "model-class": f"{class_file}:build",
            "input-shapes": "batchx" + "x".join(str(d) for d in size),
        }
    return Built(
        options=options,
        reference=partial(_reference, model),
        inputs=None,  # standard normal images at the declared size
        labels=frozenset(),
        recheck_batch=RECHECK_BATCH,
        note=f"{'x'.join(str(d) for d in size[1:])}; batch dynamic"
        + ("; --model-class factory" if fmt == "state_dict" else ""),
    )


def _reference(model: Any, inputs: Inputs, names: list[str]) -> Inputs:
    """The eager model on the one image input, under the ONNX file's output name."""
    import torch

    (image,) = inputs.values()
    with torch.no_grad():
        result = model(torch.from_numpy(np.ascontiguousarray(image)))
    return {names[0]: result.numpy()}

"""optimized: onnxruntime's offline graph optimisation, extended level, CPU provider.

onnxruntime optimises every file when it loads it; the offline file holds that work done once
(constant folding, redundant nodes removed, Conv/activation and LayerNorm/Attention fusions),
so a session starts faster and runtimes without the optimisers (onnxruntime's minimal and web
builds) get the fused graph. The extended level's fused ops (FusedConv, SkipLayerNormalization,
...) are onnxruntime's own, for its CPU provider: the method line names them when the file
holds any. onnxscript's optimizer (constant folding, dead code) was measured on the same
models and made no file faster or smaller (bench/RESULTS.md, section 7), and is not in the
scikit-learn image.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from converter.errors import describe
from converter.variants.make import CannotMake, MakeInputs, count_text, quiet_tools

STANDARD_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")


def make_optimized(source: Path, target: Path, data: MakeInputs) -> str:
    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(target)
    options.log_severity_level = 3
    try:
        with quiet_tools():
            ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime could not load or optimise this graph
        raise CannotMake(f"onnxruntime could not optimise the file: {describe(exc)}") from None
    model = onnx.load(str(target), load_external_data=False)
    own = Counter(f"{n.domain}.{n.op_type}" for n in model.graph.node if n.domain not in STANDARD_DOMAINS)
    text = f"onnxruntime {ort.__version__} offline graph optimisation, extended level, CPU provider"
    if own:
        return text + f"; holds onnxruntime's CPU operators ({count_text(own)}): serve it with onnxruntime on CPU"
    return text + "; holds standard ONNX operators only"

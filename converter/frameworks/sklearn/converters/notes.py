"""Why some estimators cannot be converted, and which are computed in double inside the graph."""

from __future__ import annotations

# Estimators without a converter, and why there can be none. The message names the reason.
NO_ONNX_EQUIVALENT: dict[str, str] = {
    "NMF": "its transform solves a non-negative least-squares problem per sample by iteration; ONNX has no such operator",
    "MiniBatchNMF": "its transform solves a non-negative least-squares problem per sample by iteration; ONNX has no such operator",
    "LatentDirichletAllocation": "its transform runs the variational E-step by iteration until convergence; ONNX has no such operator",
    "DictionaryLearning": "its transform runs orthogonal matching pursuit (a per-sample greedy solver); ONNX has no such operator",
    "MiniBatchDictionaryLearning": "its transform runs orthogonal matching pursuit (a per-sample greedy solver); ONNX has no such operator",
    "LocallyLinearEmbedding": "its transform solves a small linear system per sample for barycentric weights; ONNX has no batched solver",
    "Isomap": "its transform needs geodesic (shortest-path) distances through the training graph; no converter is written",
    "BisectingKMeans": "its predict walks the bisection tree level by level; no converter is written (KMeans converts)",
    "PolynomialCountSketch": "its transform needs an FFT-based count sketch; no converter is written",
    "GaussianProcessClassifier": "skl2onnx converts the binary case only; the multiclass one-vs-rest Laplace approximation has no converter",
    "TargetEncoder": "skl2onnx converts it for a binary or continuous target only; a multiclass target has no converter",
    "FeatureHasher": "it takes dicts or strings, not a numeric matrix; hash the features before the model",
    "HashingVectorizer": "it takes raw text and hashes tokens; skl2onnx has no converter for it (TfidfVectorizer and CountVectorizer convert)",
    "PatchExtractor": "it takes images and returns a variable number of patches; not a per-row model",
    "KernelDensity": "it has no predict or transform, only score_samples",
    "DummyClassifier(stratified)": "its predictions are random draws; ONNX graphs are deterministic",
    "DummyClassifier(uniform)": "its predictions are random draws; ONNX graphs are deterministic",
}

# Estimators computed in double inside the graph (float32 in and out) during the last
# conversion, with why; the backend clears it before converting and reports it after.
DOUBLED: dict[str, str] = {}
EXP_UNDERFLOW = "its rbf weights exp(-gamma d^2) underflow in float32 long before float64"
# float32 keeps ~7 digits: a product summed over terms this much larger than the result loses them
FLOAT32_BUDGET = 1e-4
RADIUS_BOUNDARY = (
    "whether a row is within the radius is a comparison of its distance with it, which float32 "
    "rounding decides the other way for rows on the boundary"
)
NEAREST_DONORS = (
    "its donors are the training rows nearest in nan-euclidean distance, whose float32 rounding "
    "reorders rows at near-equal distances"
)

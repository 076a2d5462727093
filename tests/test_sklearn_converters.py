"""The skl2onnx converters this tool registers or corrects (converter/frameworks/sklearn/converters/).

Each estimator is trained, saved, converted through the CLI (which validates at two batch
sizes), and the .onnx is then run again here on fresh inputs and compared with scikit-learn.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from tests.fixtures.sklearn import dataset, lazy

pytestmark = pytest.mark.converts
sklearn, sio, joblib = lazy("sklearn"), lazy("skops.io"), lazy("joblib")


_DATASETS = {"IRIS": "iris", "DIAB": "diabetes", "CANCER": "breast_cancer"}


class _Data:
    """The cases' data, loaded on first use: ``X_IRIS_RAW`` and ``Y_IRIS`` as scikit-learn gives them,
    ``X_IRIS`` standardised; the same for DIAB (diabetes) and CANCER (breast cancer)."""

    def __getattr__(self, attribute: str) -> np.ndarray:
        axis, short, *raw = attribute.split("_")
        name = _DATASETS[short]
        if axis == "Y":
            return dataset(name)[1]
        return dataset(name)[0] if raw else _standardised(name)


@functools.cache
def _standardised(name: str) -> np.ndarray:
    x = sklearn.preprocessing.StandardScaler().fit_transform(dataset(name)[0])
    x.flags.writeable = False
    return x


data = _Data()
RNG = np.random.default_rng(7)


def normal(n: int, width: int) -> np.ndarray:
    return RNG.standard_normal((n, width)).astype(np.float32)


def near_iris(n: int) -> np.ndarray:
    return (data.X_IRIS[RNG.integers(0, len(data.X_IRIS), n)] + RNG.normal(0, 0.1, (n, 4))).astype(np.float32)


def counts(n: int) -> np.ndarray:
    return RNG.integers(0, 8, size=(n, 4)).astype(np.float32)


def with_holes(n: int) -> np.ndarray:
    x = normal(n, 4)
    x[RNG.random(x.shape) < 0.2] = np.nan
    return x


def fit(estimator: Any, X: np.ndarray, y: np.ndarray | None = None) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(X) if y is None else estimator.fit(X, y)


# name -> (fitted estimator factory, input generator for validation and the re-check or None for N(0, 1))
CASES: dict[str, tuple[Callable[[], Any], Callable[[int], np.ndarray] | None]] = {
    # corrections
    "hist_gradient_boosting_classifier": (
        lambda: fit(sklearn.ensemble.HistGradientBoostingClassifier(), data.X_IRIS, data.Y_IRIS),
        None,
    ),
    "hist_gradient_boosting_regressor": (
        lambda: fit(sklearn.ensemble.HistGradientBoostingRegressor(), data.X_DIAB, data.Y_DIAB),
        None,
    ),
    "hist_gradient_boosting_with_nan": (
        lambda: fit(
            sklearn.ensemble.HistGradientBoostingClassifier(),
            np.where(np.isnan(with_holes(150)), np.nan, data.X_IRIS),
            data.Y_IRIS,
        ),
        with_holes,
    ),
    "gaussian_process_classifier_binary": (
        lambda: fit(sklearn.gaussian_process.GaussianProcessClassifier(), data.X_CANCER, data.Y_CANCER),
        None,
    ),
    "quadratic_discriminant_analysis": (
        lambda: fit(sklearn.discriminant_analysis.QuadraticDiscriminantAnalysis(), data.X_IRIS, data.Y_IRIS),
        None,
    ),
    "tfidf_transformer": (lambda: fit(sklearn.feature_extraction.text.TfidfTransformer(), data.X_IRIS_RAW), counts),
    "pls_regression": (lambda: fit(sklearn.cross_decomposition.PLSRegression(), data.X_DIAB, data.Y_DIAB), None),
    "cca": (lambda: fit(sklearn.cross_decomposition.CCA(), data.X_DIAB, np.c_[data.Y_DIAB, data.X_DIAB[:, 0]]), None),
    "pls_canonical": (
        lambda: fit(sklearn.cross_decomposition.PLSCanonical(), data.X_DIAB, np.c_[data.Y_DIAB, data.X_DIAB[:, 0]]),
        None,
    ),
    "kbins_discretizer_onehot": (lambda: fit(sklearn.preprocessing.KBinsDiscretizer(), data.X_IRIS), None),
    "random_trees_embedding": (
        lambda: fit(sklearn.ensemble.RandomTreesEmbedding(n_estimators=10, random_state=0), data.X_IRIS),
        None,
    ),
    "linear_discriminant_binary": (
        lambda: fit(sklearn.discriminant_analysis.LinearDiscriminantAnalysis(), data.X_CANCER, data.Y_CANCER),
        None,
    ),
    "linear_discriminant_multiclass": (
        lambda: fit(sklearn.discriminant_analysis.LinearDiscriminantAnalysis(), data.X_IRIS, data.Y_IRIS),
        None,
    ),
    "isolation_forest": (lambda: fit(sklearn.ensemble.IsolationForest(random_state=0), data.X_IRIS), None),
    # new converters
    "dummy_classifier_prior": (
        lambda: fit(sklearn.dummy.DummyClassifier(), data.X_IRIS, data.Y_IRIS[:150] % 2 + data.Y_IRIS // 2),
        None,
    ),
    "dummy_classifier_most_frequent": (
        lambda: fit(sklearn.dummy.DummyClassifier(strategy="most_frequent"), data.X_IRIS, np.r_[data.Y_IRIS, 2][1:]),
        None,
    ),
    "dummy_classifier_constant_strings": (
        lambda: fit(
            sklearn.dummy.DummyClassifier(strategy="constant", constant="b"),
            data.X_IRIS,
            np.array(["a", "b", "c"])[data.Y_IRIS],
        ),
        None,
    ),
    "dummy_regressor": (lambda: fit(sklearn.dummy.DummyRegressor(strategy="median"), data.X_DIAB, data.Y_DIAB), None),
    "nearest_centroid": (lambda: fit(sklearn.neighbors.NearestCentroid(), data.X_IRIS, data.Y_IRIS), None),
    "nearest_centroid_priors_manhattan": (
        lambda: fit(
            sklearn.neighbors.NearestCentroid(metric="manhattan", priors=[0.5, 0.3, 0.2]), data.X_IRIS, data.Y_IRIS
        ),
        None,
    ),
    "label_propagation": (lambda: fit(sklearn.semi_supervised.LabelPropagation(), data.X_IRIS, data.Y_IRIS), near_iris),
    "label_spreading": (lambda: fit(sklearn.semi_supervised.LabelSpreading(), data.X_IRIS, data.Y_IRIS), near_iris),
    "kernel_ridge_linear": (lambda: fit(sklearn.kernel_ridge.KernelRidge(), data.X_DIAB, data.Y_DIAB), None),
    "kernel_ridge_rbf": (
        lambda: fit(sklearn.kernel_ridge.KernelRidge(kernel="rbf", gamma=0.1), data.X_DIAB, data.Y_DIAB),
        None,
    ),
    "kernel_ridge_poly": (
        lambda: fit(sklearn.kernel_ridge.KernelRidge(kernel="poly", degree=2), data.X_DIAB, data.Y_DIAB),
        None,
    ),
    "kernel_ridge_laplacian": (
        lambda: fit(sklearn.kernel_ridge.KernelRidge(kernel="laplacian"), data.X_DIAB, data.Y_DIAB),
        None,
    ),
    "kernel_ridge_sigmoid_two_targets": (
        lambda: fit(sklearn.kernel_ridge.KernelRidge(kernel="sigmoid"), data.X_DIAB, np.c_[data.Y_DIAB, -data.Y_DIAB]),
        None,
    ),
    "kernel_ridge_cosine": (
        lambda: fit(sklearn.kernel_ridge.KernelRidge(kernel="cosine"), data.X_DIAB, data.Y_DIAB),
        None,
    ),
    "transformed_target_identity": (
        lambda: fit(sklearn.compose.TransformedTargetRegressor(), data.X_DIAB, data.Y_DIAB),
        None,
    ),
    "transformed_target_log_exp": (
        lambda: fit(
            sklearn.compose.TransformedTargetRegressor(
                sklearn.linear_model.LinearRegression(), func=np.log, inverse_func=np.exp
            ),
            data.X_DIAB,
            data.Y_DIAB,
        ),
        None,
    ),
    "transformed_target_scaler": (
        lambda: fit(
            sklearn.compose.TransformedTargetRegressor(
                sklearn.kernel_ridge.KernelRidge(kernel="rbf"), transformer=sklearn.preprocessing.StandardScaler()
            ),
            data.X_DIAB,
            data.Y_DIAB,
        ),
        None,
    ),
    "nystroem": (
        lambda: fit(sklearn.kernel_approximation.Nystroem(n_components=50, random_state=0), data.X_IRIS),
        None,
    ),
    "nystroem_ill_conditioned": (lambda: fit(sklearn.kernel_approximation.Nystroem(random_state=3), data.X_IRIS), None),
    "nystroem_poly": (
        lambda: fit(sklearn.kernel_approximation.Nystroem(kernel="poly", n_components=30, random_state=0), data.X_IRIS),
        None,
    ),
    "rbf_sampler": (lambda: fit(sklearn.kernel_approximation.RBFSampler(random_state=0), data.X_IRIS), None),
    "skewed_chi2_sampler": (
        lambda: fit(sklearn.kernel_approximation.SkewedChi2Sampler(random_state=0), data.X_IRIS_RAW),
        counts,
    ),
    "additive_chi2_sampler": (
        lambda: fit(sklearn.kernel_approximation.AdditiveChi2Sampler(sample_steps=3), data.X_IRIS_RAW),
        counts,
    ),
    "spline_transformer": (lambda: fit(sklearn.preprocessing.SplineTransformer(), data.X_IRIS), None),
    "spline_transformer_continue_no_bias": (
        lambda: fit(
            sklearn.preprocessing.SplineTransformer(degree=2, n_knots=4, extrapolation="continue", include_bias=False),
            data.X_IRIS,
        ),
        None,
    ),
    "factor_analysis": (lambda: fit(sklearn.decomposition.FactorAnalysis(n_components=3), data.X_DIAB), None),
    "fast_ica": (lambda: fit(sklearn.decomposition.FastICA(n_components=3, random_state=0), data.X_DIAB), None),
    "sparse_pca": (lambda: fit(sklearn.decomposition.SparsePCA(n_components=3, random_state=0), data.X_DIAB), None),
    "minibatch_sparse_pca": (
        lambda: fit(sklearn.decomposition.MiniBatchSparsePCA(n_components=3, random_state=0), data.X_DIAB),
        None,
    ),
    "pls_svd": (lambda: fit(sklearn.cross_decomposition.PLSSVD(n_components=1), data.X_DIAB, data.Y_DIAB), None),
    "bernoulli_rbm": (lambda: fit(sklearn.neural_network.BernoulliRBM(random_state=0), data.X_IRIS_RAW / 8), None),
    "feature_agglomeration": (lambda: fit(sklearn.cluster.FeatureAgglomeration(n_clusters=3), data.X_DIAB), None),
    "missing_indicator": (lambda: fit(sklearn.impute.MissingIndicator(), with_holes(100)), with_holes),
    "knn_imputer_rows_missing_several_values": (
        lambda: fit(
            sklearn.impute.KNNImputer(add_indicator=True),
            np.where(np.isnan(with_holes(150)), np.nan, data.X_IRIS + RNG.normal(0, 1e-3, data.X_IRIS.shape)),
        ),
        with_holes,
    ),
    "radius_neighbors_transformer": (
        lambda: fit(sklearn.neighbors.RadiusNeighborsTransformer(), data.X_IRIS),
        near_iris,
    ),
    "k_neighbors_transformer": (lambda: fit(sklearn.neighbors.KNeighborsTransformer(), data.X_IRIS), None),
    "radius_neighbors_classifier": (
        lambda: fit(sklearn.neighbors.RadiusNeighborsClassifier(), data.X_IRIS, data.Y_IRIS),
        near_iris,
    ),
    "radius_neighbors_regressor_with_empty_rows": (
        lambda: fit(sklearn.neighbors.RadiusNeighborsRegressor(), data.X_DIAB, data.Y_DIAB),
        None,
    ),
    "elliptic_envelope": (lambda: fit(sklearn.covariance.EllipticEnvelope(random_state=0), data.X_IRIS), None),
    "affinity_propagation": (lambda: fit(sklearn.cluster.AffinityPropagation(random_state=0), data.X_IRIS), None),
    "mean_shift": (lambda: fit(sklearn.cluster.MeanShift(), data.X_IRIS), None),
    "birch": (lambda: fit(sklearn.cluster.Birch(), data.X_IRIS), None),
    "isotonic_nan_outside": (
        lambda: fit(sklearn.isotonic.IsotonicRegression(), data.X_DIAB[:, 2], data.Y_DIAB),
        lambda n: normal(n, 1) * 2,
    ),
    "isotonic_clip": (
        lambda: fit(sklearn.isotonic.IsotonicRegression(out_of_bounds="clip"), data.X_DIAB[:, 2], data.Y_DIAB),
        None,
    ),
    "minibatch_kmeans": (
        lambda: fit(sklearn.cluster.MiniBatchKMeans(n_clusters=4, random_state=0, n_init=3), data.X_IRIS),
        None,
    ),
    "gaussian_mixture": (
        lambda: fit(sklearn.mixture.GaussianMixture(n_components=3, random_state=0), data.X_IRIS),
        None,
    ),
    "linear_svc_binary": (lambda: fit(sklearn.svm.LinearSVC(), data.X_CANCER, data.Y_CANCER), None),
    "svc_binary": (lambda: fit(sklearn.svm.SVC(), data.X_CANCER, data.Y_CANCER), None),
    "perceptron_binary": (lambda: fit(sklearn.linear_model.Perceptron(), data.X_CANCER, data.Y_CANCER), None),
    "ridge_classifier_binary": (
        lambda: fit(sklearn.linear_model.RidgeClassifier(), data.X_CANCER, data.Y_CANCER),
        None,
    ),
    "svc_multiclass": (lambda: fit(sklearn.svm.SVC(), data.X_IRIS, data.Y_IRIS), None),
}


def save(model: Any, directory: Path, name: str) -> tuple[Path, list[str]]:
    """Save as .skops, or as .joblib (with --allow-unsafe-load) when skops cannot hold it."""
    try:
        path = directory / f"{name}.skops"
        sio.dump(model, path)
        return path, []
    except Exception:
        path = directory / f"{name}.joblib"
        joblib.dump(model, path)
        return path, ["--allow-unsafe-load", "true"]


def sklearn_outputs(model: Any, x: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """What docs/sklearn.md promises each output name holds."""
    x = x.astype(np.float64)
    if isinstance(model, sklearn.isotonic.IsotonicRegression):
        x = x.ravel()
    methods = {
        "label": "predict",
        "probabilities": "predict_proba",
        "scores": "decision_function" if hasattr(model, "decision_function") else "transform",
        "variable": "predict" if hasattr(model, "predict") else "transform",
    }
    outputs = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in names:
            value = getattr(model, methods[name])(x)
            outputs[name] = np.asarray(value.toarray() if hasattr(value, "toarray") else value)
    return outputs


@pytest.mark.parametrize("name", sorted(CASES))
def test_registered_converter_reproduces_scikit_learn(name: str, tmp_path: Path, run_cli) -> None:
    factory, inputs = CASES[name]
    model = factory()
    path, extra = save(model, tmp_path, name)
    args = ["--model-path", str(path), *extra]
    width = 1 if isinstance(model, sklearn.isotonic.IsotonicRegression) else model.n_features_in_
    draw = inputs or (lambda n: normal(n, width))
    if inputs is not None or isinstance(model, sklearn.isotonic.IsotonicRegression):
        np.save(tmp_path / "samples.npy", draw(16).reshape(16, width))
        args += ["--sample-data", str(tmp_path / "samples.npy")]
    result = run_cli(*args)
    assert result.code == 0, result.stdout + result.errors
    report = result.report(name)
    assert report["passed"] is True
    assert report["validation"]["batch_sizes"] == [16, 8]
    # an independent run of the file on new inputs, compared with scikit-learn here
    session = ort.InferenceSession(str(result.output_dir / f"{name}.onnx"), providers=["CPUExecutionProvider"])
    x = draw(37).reshape(37, width)
    names = [o.name for o in session.get_outputs()]
    actual = dict(zip(names, session.run(None, {"input": x}), strict=True))
    expected = sklearn_outputs(model, x, names)
    for output in names:
        got, want = actual[output], expected[output]
        assert got.size == want.size, (output, got.shape, want.shape)
        if output == "label" or want.dtype.kind in "OUSb":
            np.testing.assert_array_equal(got.reshape(want.shape).astype(str), want.astype(str), err_msg=output)
        else:
            np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-3, atol=1e-3, err_msg=output)


def test_hist_gradient_boosting_writes_a_tree_ensemble_within_ai_onnx_ml_3(tmp_path: Path, run_cli) -> None:
    path, _ = save(CASES["hist_gradient_boosting_classifier"][0](), tmp_path, "hgb")
    result = run_cli("--model-path", str(path))
    onnx_info = result.report("hgb")["onnx"]
    assert onnx_info["opsets"]["ai.onnx.ml"] <= 3  # skl2onnx refuses 4; 5 deprecates TreeEnsembleClassifier
    assert onnx_info["operators"]["ai.onnx.ml.TreeEnsembleClassifier"] == 1


def test_binary_lda_probabilities_are_the_sigmoid_of_the_decision_not_of_twice_it(tmp_path: Path, run_cli) -> None:
    model = CASES["linear_discriminant_binary"][0]()
    path, _ = save(model, tmp_path, "lda")
    assert run_cli("--model-path", str(path)).code == 0
    session = ort.InferenceSession(str(tmp_path / "out" / "lda.onnx"), providers=["CPUExecutionProvider"])
    x = normal(50, 30)
    probabilities = session.run(["probabilities"], {"input": x})[0]
    decision = model.decision_function(x.astype(np.float64))
    np.testing.assert_allclose(probabilities[:, 1], 1 / (1 + np.exp(-decision)), atol=1e-5)
    assert np.abs(probabilities[:, 1] - 1 / (1 + np.exp(-2 * decision))).max() > 1e-2  # what skl2onnx wrote


def test_binary_classifier_without_predict_proba_has_scores_equal_to_decision_function(tmp_path: Path, run_cli) -> None:
    for name in ("svc_binary", "perceptron_binary"):
        path, _ = save(CASES[name][0](), tmp_path, name)
        result = run_cli("--model-path", str(path))
        outputs = {o["name"]: o for o in result.report(name)["onnx"]["outputs"]}
        assert set(outputs) == {"label", "scores"}
        assert outputs["scores"]["shape"][1] == 1  # one column, d, as decision_function


def test_sparse_output_is_densified_and_the_batch_axis_stays_dynamic(tmp_path: Path, run_cli) -> None:
    path, _ = save(CASES["tfidf_transformer"][0](), tmp_path, "tfidf")
    np.save(tmp_path / "c.npy", counts(10))
    result = run_cli("--model-path", str(path), "--sample-data", str(tmp_path / "c.npy"))
    assert result.code == 0, result.stdout
    output = result.report("tfidf")["onnx"]["outputs"][0]
    assert output["name"] == "variable"
    assert not isinstance(output["shape"][0], int)  # skl2onnx declared [1, C]


def test_radius_regressor_gives_nan_where_no_training_row_is_within_the_radius(tmp_path: Path, run_cli) -> None:
    model = CASES["radius_neighbors_regressor_with_empty_rows"][0]()
    path, _ = save(model, tmp_path, "rnr")
    assert run_cli("--model-path", str(path)).code == 0
    session = ort.InferenceSession(str(tmp_path / "out" / "rnr.onnx"), providers=["CPUExecutionProvider"])
    far = np.full((2, 10), 50.0, dtype=np.float32)
    assert np.isnan(session.run(None, {"input": far})[0]).all()


def test_dummy_classifier_with_random_predictions_exits_1_with_the_reason(tmp_path: Path, run_cli) -> None:
    path, _ = save(
        fit(sklearn.dummy.DummyClassifier(strategy="stratified"), data.X_IRIS, data.Y_IRIS), tmp_path, "dummy"
    )
    result = run_cli("--model-path", str(path))
    assert result.code == 1
    assert result.stdout.startswith(
        "FAIL dummy.skops: DummyClassifier cannot be converted to ONNX: its predictions are random draws; "
        "ONNX graphs are deterministic"
    )


def test_estimator_without_onnx_equivalent_is_named_with_the_reason(tmp_path: Path, run_cli) -> None:
    path, _ = save(fit(sklearn.decomposition.NMF(n_components=2, max_iter=500), data.X_IRIS_RAW), tmp_path, "nmf")
    np.save(tmp_path / "counts.npy", counts(10))  # NMF refuses negative inputs
    result = run_cli("--model-path", str(path), "--sample-data", str(tmp_path / "counts.npy"))
    assert result.code == 1
    assert result.stdout.startswith(
        "FAIL nmf.skops: NMF cannot be converted to ONNX: its transform solves a non-negative least-squares "
        "problem per sample by iteration; ONNX has no such operator"
    )
    assert result.report("nmf")["status"] == "error"


def test_kmeans_distances_on_badly_scaled_features_stay_within_tolerance(tmp_path: Path, run_cli) -> None:
    # wine's proline reaches 1680: skl2onnx's |x|^2 - 2x.c + |c|^2 in float32 was 0.04 off near a center
    from sklearn.cluster import KMeans
    from sklearn.datasets import load_wine

    X, _ = load_wine(return_X_y=True)
    model = fit(KMeans(random_state=0, n_init=3), X)
    rows = np.clip(RNG.normal(X.mean(0), X.std(0), (2000, X.shape[1])), X.min(0), X.max(0)).astype(np.float32)
    path, _ = save(model, tmp_path, "kmeans")
    np.save(tmp_path / "rows.npy", rows[:16])
    assert run_cli("--model-path", str(path), "--sample-data", str(tmp_path / "rows.npy")).code == 0
    session = ort.InferenceSession(str(tmp_path / "out" / "kmeans.onnx"), providers=["CPUExecutionProvider"])
    label, scores = session.run(["label", "scores"], {"input": rows})
    np.testing.assert_array_equal(label, model.predict(rows.astype(np.float64)))
    np.testing.assert_allclose(scores, model.transform(rows.astype(np.float64)), rtol=1e-3, atol=1e-3)


def test_label_propagation_says_it_computes_in_double_inside_the_graph(tmp_path: Path, run_cli) -> None:
    path, _ = save(CASES["label_propagation"][0](), tmp_path, "lp")
    np.save(tmp_path / "rows.npy", near_iris(16))
    result = run_cli("--model-path", str(path), "--sample-data", str(tmp_path / "rows.npy"))
    assert result.code == 0, result.stdout
    report = result.report("lp")
    assert report["onnx"]["inputs"][0]["dtype"] == "float32"
    assert report["warnings"] == [
        "LabelPropagation is computed in double precision inside the graph: its rbf weights exp(-gamma d^2) "
        "underflow in float32 long before float64"
    ]


def test_estimator_without_an_inference_method_exits_1_naming_it(tmp_path: Path, run_cli) -> None:
    from sklearn.cluster import DBSCAN

    path, _ = save(fit(DBSCAN(), data.X_IRIS), tmp_path, "dbscan")
    result = run_cli("--model-path", str(path))
    assert result.code == 1
    assert result.errors.strip() == (
        "error: DBSCAN has no predict, predict_proba or transform method to convert; convert an estimator that "
        "predicts or transforms new rows (DBSCAN and the like only label their training data)"
    )


def test_ill_conditioned_nystroem_is_computed_in_double_and_says_so(tmp_path: Path, run_cli) -> None:
    # 100 components out of 150 rows: normalization_ reaches 1e6 and float32 products cancel (0.09 off)
    model = CASES["nystroem_ill_conditioned"][0]()
    path, _ = save(model, tmp_path, "nys")
    result = run_cli("--model-path", str(path))
    assert result.code == 0, result.stdout
    report = result.report("nys")
    assert report["onnx"]["inputs"][0]["dtype"] == "float32"
    assert report["warnings"][0].startswith(
        "Nystroem is computed in double precision inside the graph: its normalization matrix is ill-conditioned"
    )
    session = ort.InferenceSession(str(tmp_path / "out" / "nys.onnx"), providers=["CPUExecutionProvider"])
    x = normal(500, 4)
    np.testing.assert_allclose(session.run(None, {"input": x})[0], model.transform(x.astype(np.float64)), atol=1e-4)


def test_forest_labels_follow_scikit_learn_when_class_votes_tie(tmp_path: Path, run_cli) -> None:
    # 100 trees, 3 classes: exact ties in predict_proba are common; float32 sums flipped 8 of 5,000 labels
    from sklearn.ensemble import RandomForestClassifier

    model = fit(RandomForestClassifier(random_state=0), data.X_IRIS, data.Y_IRIS)
    path, _ = save(model, tmp_path, "forest")
    assert run_cli("--model-path", str(path)).code == 0
    session = ort.InferenceSession(str(tmp_path / "out" / "forest.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((5000, 4)).astype(np.float32)
    label, probabilities = session.run(["label", "probabilities"], {"input": x})
    expected = model.predict_proba(x.astype(np.float64))
    assert (np.sort(expected, axis=1)[:, -1] == np.sort(expected, axis=1)[:, -2]).sum() > 0  # ties do occur
    np.testing.assert_array_equal(label, model.predict(x.astype(np.float64)))
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)


def on_the_radius(model: Any, n: int, rng: np.random.Generator) -> np.ndarray:
    """Rows at distance ``radius`` from a training row, as float32 puts them: within 1e-7 of it,
    on either side; kept where another training row is well inside (scikit-learn raises without one)."""
    fit_x = model._fit_X
    directions = rng.standard_normal((n, fit_x.shape[1]))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    x = (fit_x[rng.integers(0, len(fit_x), n)] + model.radius * directions).astype(np.float32)
    distances = np.linalg.norm(x.astype(np.float64)[:, None, :] - fit_x[None], axis=2)
    return x[(distances < 0.9 * model.radius).any(axis=1)]


@pytest.mark.parametrize(
    "name", ["radius_neighbors_transformer", "radius_neighbors_classifier", "radius_neighbors_regressor"]
)
def test_radius_neighbors_decide_rows_on_the_radius_as_scikit_learn_does(name: str, tmp_path: Path, run_cli) -> None:
    # float32 distances are within 1e-7 of the double ones: rows on the boundary were inside in the
    # file and outside in scikit-learn, or the reverse (957 of 2,000 such rows for the transformer)
    model = (
        fit(sklearn.neighbors.RadiusNeighborsRegressor(), data.X_IRIS, data.Y_IRIS * 1.5)
        if name.endswith("regressor")
        else CASES[name][0]()
    )
    path, _ = save(model, tmp_path, name)
    np.save(tmp_path / "near.npy", near_iris(16))
    result = run_cli("--model-path", str(path), "--sample-data", str(tmp_path / "near.npy"))
    assert result.code == 0, result.stdout
    assert result.report(name)["warnings"] == [
        f"{type(model).__name__} is computed in double precision inside the graph: "
        "whether a row is within the radius is a comparison of its distance with it, which float32 "
        "rounding decides the other way for rows on the boundary"
    ]
    session = ort.InferenceSession(str(result.output_dir / f"{name}.onnx"), providers=["CPUExecutionProvider"])
    x = on_the_radius(model, 2000, np.random.default_rng(0))
    names = [o.name for o in session.get_outputs()]
    expected = sklearn_outputs(model, x, names)
    for output, got in zip(names, session.run(None, {"input": x}), strict=True):
        want = expected[output]
        np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-3, atol=1e-3, err_msg=output)


def test_knn_imputer_takes_the_donors_scikit_learn_takes_on_unscaled_features(tmp_path: Path, run_cli) -> None:
    # wine's proline reaches 1680. With it missing, skl2onnx's float32 x^2 + y^2 - 2xy adds and takes
    # away ~1e6 per distance: donors whose distances differ by 0.2 % changed places (18 to 30 of
    # 2,000 rows imputed with other donors' mean)
    from sklearn.datasets import load_wine

    rng = np.random.default_rng(0)
    X, _ = load_wine(return_X_y=True)
    train = X.copy()
    rows = np.flatnonzero(rng.random(len(X)) < 0.3)
    train[rows, rng.integers(0, X.shape[1], rows.size)] = np.nan
    model = fit(sklearn.impute.KNNImputer(), train)
    x = np.clip(rng.normal(X.mean(0), X.std(0), (2000, X.shape[1])), X.min(0), X.max(0)).astype(np.float32)
    x[:, 12] = np.nan  # proline
    x[::3, 0] = np.nan  # and alcohol in a third of the rows: two missing values
    path, _ = save(model, tmp_path, "knn_imputer")
    np.save(tmp_path / "rows.npy", x[:16])
    result = run_cli("--model-path", str(path), "--sample-data", str(tmp_path / "rows.npy"))
    assert result.code == 0, result.stdout
    assert result.report("knn_imputer")["warnings"] == [
        "KNNImputer is computed in double precision inside the graph: its donors are the training rows "
        "nearest in nan-euclidean distance, whose float32 rounding reorders rows at near-equal distances"
    ]
    session = ort.InferenceSession(str(result.output_dir / "knn_imputer.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(
        session.run(None, {"input": x})[0], model.transform(x.astype(np.float64)), rtol=1e-3, atol=1e-3
    )

"""Every converter this package adds, registered with skl2onnx in one place (once per process)."""

from __future__ import annotations

from typing import Any

import numpy as np

from converter.frameworks.sklearn.converters.blocks import parser_of
from converter.frameworks.sklearn.converters.classifiers import (
    convert_dummy_classifier,
    convert_label_propagation,
    convert_linear_discriminant,
    convert_nearest_centroid,
)
from converter.frameworks.sklearn.converters.clustering import (
    convert_birch,
    convert_elliptic_envelope,
    convert_nearest_center,
)
from converter.frameworks.sklearn.converters.corrections import register_corrections
from converter.frameworks.sklearn.converters.regressors import (
    convert_dummy_regressor,
    convert_isotonic,
    convert_kernel_ridge,
    convert_radius_classifier,
    convert_radius_regressor,
    convert_transformed_target,
)
from converter.frameworks.sklearn.converters.shapes import (
    columns_shape,
    label_and_scores_shape,
    label_shape,
    missing_indicator_shape,
    target_count,
    transformed_target_shape,
)
from converter.frameworks.sklearn.converters.transformers import (
    convert_additive_chi2,
    convert_agglomeration,
    convert_bernoulli_rbm,
    convert_factor_analysis,
    convert_fast_ica,
    convert_missing_indicator,
    convert_nystroem,
    convert_pls_svd,
    convert_radius_transformer,
    convert_rbf_sampler,
    convert_skewed_chi2,
    convert_sparse_pca,
    convert_spline,
)

# One converter: the estimator class, its shape calculator, its converter, its options and parser.
Row = tuple[type, Any, Any, dict[str, Any] | None, Any]
CLASSIFIER_OPTIONS = {"zipmap": [True, False, "columns"], "nocl": [True, False]}
_registered = False


def register() -> None:
    """Register every converter of this package with skl2onnx (once per process)."""
    global _registered
    if _registered:
        return
    from skl2onnx import update_registered_converter

    register_corrections()
    for model, shape, convert, options, parser in [*_classifiers(), *_regressors(), *_transformers(), *_clusterers()]:
        update_registered_converter(
            model, f"OnnxConvert{model.__name__}", shape, convert, options=options, parser=parser
        )
    _registered = True


def _classifiers() -> list[Row]:
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes as classes
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.dummy import DummyClassifier
    from sklearn.neighbors import NearestCentroid, RadiusNeighborsClassifier
    from sklearn.semi_supervised import LabelPropagation, LabelSpreading

    return [
        (DummyClassifier, classes, convert_dummy_classifier, CLASSIFIER_OPTIONS, None),
        (NearestCentroid, classes, convert_nearest_centroid, CLASSIFIER_OPTIONS, None),
        (LinearDiscriminantAnalysis, classes, convert_linear_discriminant, CLASSIFIER_OPTIONS, None),
        (LabelPropagation, classes, convert_label_propagation, CLASSIFIER_OPTIONS, None),
        (LabelSpreading, classes, convert_label_propagation, CLASSIFIER_OPTIONS, None),
        (RadiusNeighborsClassifier, classes, convert_radius_classifier, CLASSIFIER_OPTIONS, None),
    ]


def _regressors() -> list[Row]:
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.dummy import DummyRegressor
    from sklearn.isotonic import IsotonicRegression
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.neighbors import RadiusNeighborsRegressor

    return [
        (DummyRegressor, columns_shape(lambda op: np.size(op.constant_)), convert_dummy_regressor, None, None),
        (KernelRidge, columns_shape(lambda op: target_count(op.dual_coef_)), convert_kernel_ridge, None, None),
        (TransformedTargetRegressor, transformed_target_shape, convert_transformed_target, None, None),
        (RadiusNeighborsRegressor, columns_shape(lambda op: target_count(op._y)), convert_radius_regressor, None, None),
        (IsotonicRegression, columns_shape(lambda op: 1), convert_isotonic, None, None),
    ]


def _transformers() -> list[Row]:
    from sklearn.cluster import FeatureAgglomeration
    from sklearn.cross_decomposition import PLSSVD
    from sklearn.decomposition import FactorAnalysis, FastICA, MiniBatchSparsePCA, SparsePCA
    from sklearn.impute import MissingIndicator
    from sklearn.kernel_approximation import AdditiveChi2Sampler, Nystroem, RBFSampler, SkewedChi2Sampler
    from sklearn.neighbors import RadiusNeighborsTransformer
    from sklearn.neural_network import BernoulliRBM
    from sklearn.preprocessing import SplineTransformer

    components = columns_shape(lambda op: op.components_.shape[0])
    random_weights = columns_shape(lambda op: op.random_weights_.shape[1])
    chi2_columns = columns_shape(lambda op: op.n_features_in_ * (2 * op.sample_steps - 1))
    clusters = columns_shape(lambda op: int(np.max(op.labels_)) + 1)
    # skl2onnx's parser gives every ClusterMixin the outputs label and scores: FeatureAgglomeration has one
    return [
        (Nystroem, components, convert_nystroem, None, None),
        (RBFSampler, random_weights, convert_rbf_sampler, None, None),
        (SkewedChi2Sampler, random_weights, convert_skewed_chi2, None, None),
        (AdditiveChi2Sampler, chi2_columns, convert_additive_chi2, None, None),
        (SplineTransformer, columns_shape(lambda op: op.n_features_out_), convert_spline, None, None),
        (FactorAnalysis, components, convert_factor_analysis, None, None),
        (FastICA, components, convert_fast_ica, None, None),
        (SparsePCA, components, convert_sparse_pca, None, None),
        (MiniBatchSparsePCA, components, convert_sparse_pca, None, None),
        (BernoulliRBM, components, convert_bernoulli_rbm, None, None),
        (FeatureAgglomeration, clusters, convert_agglomeration, None, parser_of("variable")),
        (MissingIndicator, missing_indicator_shape, convert_missing_indicator, None, None),
        (
            RadiusNeighborsTransformer,
            columns_shape(lambda op: op.n_samples_fit_),
            convert_radius_transformer,
            None,
            None,
        ),
        (PLSSVD, columns_shape(lambda op: op.x_weights_.shape[1]), convert_pls_svd, None, None),
    ]


def _clusterers() -> list[Row]:
    from sklearn.cluster import AffinityPropagation, Birch, MeanShift
    from sklearn.covariance import EllipticEnvelope

    # skl2onnx's parser gives every ClusterMixin the outputs label and scores: these two have a label only
    return [
        (EllipticEnvelope, label_and_scores_shape, convert_elliptic_envelope, None, None),
        (AffinityPropagation, label_shape, convert_nearest_center, None, parser_of("label")),
        (MeanShift, label_shape, convert_nearest_center, None, parser_of("label")),
        (Birch, label_and_scores_shape, convert_birch, None, None),
    ]

"""skl2onnx converters this tool adds or corrects, registered once when the scikit-learn backend exports.

Three kinds:

- corrections of skl2onnx 1.20 converters that write a wrong file or none (``corrections``, each
  says what it fixes);
- converters for estimators skl2onnx has none for, written with skl2onnx's algebra API
  (https://onnx.ai/sklearn-onnx/api_summary.html#register-a-new-converter), each a few lines
  that restate the estimator's own ``predict``/``transform`` in ONNX operators (``classifiers``,
  ``regressors``, ``transformers``, ``clustering``, built from ``blocks`` and ``shapes``);
- ``NO_ONNX_EQUIVALENT`` (``notes``): why the remaining estimators cannot be converted, for the error message.

``registration.register`` registers them all, in one place. Constants are computed in float64 by
numpy and stored in the input's precision. Where the estimator's result depends on float64 range
(exp underflow) or precision (distances compared with each other or with a radius, an
ill-conditioned Nystroem), the graph computes in double internally and says so (``DOUBLED``).
"""

from converter.frameworks.sklearn.converters.boosters import register_boosters, wrap_booster
from converter.frameworks.sklearn.converters.notes import DOUBLED, NO_ONNX_EQUIVALENT
from converter.frameworks.sklearn.converters.registration import register

__all__ = ["DOUBLED", "NO_ONNX_EQUIVALENT", "register", "register_boosters", "wrap_booster"]

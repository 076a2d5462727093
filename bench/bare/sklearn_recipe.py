"""The textbook scikit-learn recipe, timed against onnx-convert: load, export, one run, allclose."""

import sys

import numpy as np
import onnxruntime as ort
import skops.io as sio
from skl2onnx import to_onnx

model_path, onnx_path = sys.argv[1], sys.argv[2]
model = sio.load(model_path, trusted=sio.get_untrusted_types(file=model_path))
x = np.random.default_rng(0).standard_normal((16, model.n_features_in_)).astype(np.float32)
onx = to_onnx(model, x, options={id(model): {"zipmap": False}})
with open(onnx_path, "wb") as handle:
    handle.write(onx.SerializeToString())
session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
_, probabilities = session.run(None, {session.get_inputs()[0].name: x})
print(np.allclose(probabilities, model.predict_proba(x), rtol=1e-3, atol=1e-3))

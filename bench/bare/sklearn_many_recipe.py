"""The textbook scikit-learn recipe for many models in one process, timed against one onnx-convert run.

Imports once, then for each .skops file of a folder: load, export, one onnxruntime run, allclose
against the estimator. Prints the seconds the conversions took, imports not counted (the
benchmark times the imports in a process of their own).
"""

import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import skops.io as sio
from skl2onnx import to_onnx

folder, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
start = time.perf_counter()
agree = 0
files = sorted(folder.glob("*.skops"))
for model_path in files:
    model = sio.load(model_path, trusted=sio.get_untrusted_types(file=model_path))
    x = np.random.default_rng(0).standard_normal((16, model.n_features_in_)).astype(np.float32)
    x64 = x.astype(np.float64)  # the dtype the estimator was fitted in
    if hasattr(model, "predict_proba"):
        onx = to_onnx(model, x, options={id(model): {"zipmap": False}})
        index, expected = 1, model.predict_proba(x64)
    elif hasattr(model, "predict"):
        onx = to_onnx(model, x)
        index, expected = 0, model.predict(x64)
    else:
        onx = to_onnx(model, x)
        index, expected = 0, model.transform(x64)
    onnx_path = out / f"{model_path.stem}.onnx"
    onnx_path.write_bytes(onx.SerializeToString())
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    actual = session.run(None, {session.get_inputs()[0].name: x})[index]
    agree += np.allclose(actual.ravel(), np.asarray(expected, dtype=np.float64).ravel(), rtol=1e-3, atol=1e-3)
print(f"{time.perf_counter() - start:.4f} seconds, {agree} of {len(files)} agree")

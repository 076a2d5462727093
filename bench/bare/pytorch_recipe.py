"""The textbook PyTorch recipe, timed against onnx-convert: load, export, one run, allclose."""

import sys

import numpy as np
import onnxruntime as ort
import torch

model_path, onnx_path = sys.argv[1], sys.argv[2]
program = torch.export.load(model_path)
model = program.module()
x = torch.randn(4, 3, 224, 224)
torch.onnx.export(model, (x,), onnx_path, dynamo=True, external_data=False)
session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
(actual,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
with torch.no_grad():
    expected = model(x).numpy()
print(np.allclose(actual, expected, rtol=1e-3, atol=1e-3))

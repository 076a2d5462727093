"""PyTorch backend: detection and safe loading (load, pt2, pt2_code), the backend (backend) and what it learns
(state), a model's inputs and outputs (signature), the two export routes (routes) over torch.onnx's exporters (export).

Nothing here imports torch at module level; the registry imports ``backend`` for detection.
"""

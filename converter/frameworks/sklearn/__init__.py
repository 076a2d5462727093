"""scikit-learn backend: the backend (backend), what a .skops file may hold (skops_trust), the export through
skl2onnx (export), converters this tool adds or corrects (converters), and byte-stable files (stable).

Nothing here imports scikit-learn at module level; the registry imports ``backend`` for detection.
"""

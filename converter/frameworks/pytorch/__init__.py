"""PyTorch backend: detection and safe loading (load, pt2, pt2_code), the backend (backend), the exporters (export).

Nothing here imports torch at module level; the registry imports ``backend`` for detection.
"""

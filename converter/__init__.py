"""onnx-convert: convert PyTorch, TensorFlow/Keras and scikit-learn models to ONNX and validate them."""

__version__ = "0.1.0"

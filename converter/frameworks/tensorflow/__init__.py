"""TensorFlow/Keras backend: the backend (backend), one module per format (keras, saved_model, tflite) with
its load, reference run and export routes, the traced graph with variables kept as initializers (graph), the ONNX
model written by tf2onnx (onnx_model), a canonical node order (canonical), and the C++ start-up notices kept out of
the log (startup).

Nothing here imports TensorFlow at module level; the registry imports ``backend`` for detection.
"""

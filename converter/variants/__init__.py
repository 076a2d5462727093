"""Optimised variants of the converted file (optimized, fp16, int8-dynamic, int8-static), each
validated against the original model.

options: the four options, parsed with the request; make, optimize, fp16, quantize: making
each variant; compare: the validation against the original's runs; timing: latency side by
side with the fp32 file; result: the report data; run: the one call the pipeline makes.
Importing this package (or options, result) imports neither onnx nor onnxruntime.
"""

"""The comparison with the last release: interface, numbers, size and latency, and the gates.

``source`` finds and reads the baseline (a previous ``.report.json``, its ``.onnx`` beside it);
``interface`` diffs and classifies the inputs, outputs and versions; ``numbers`` compares the
validations and runs both files on the same inputs; ``timing`` times them side by side;
``compare`` puts it together and applies the gates; ``render`` is the markdown section.
"""

"""Train the example models of one framework: python examples/build.py --framework sklearn --out DIR."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MODULES = {
    "sklearn": "examples.sklearn_models",
    "pytorch": "examples.pytorch_models",
    "tensorflow": "examples.tensorflow_models",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--framework", choices=sorted(MODULES), required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    for path, extra in importlib.import_module(MODULES[args.framework]).build(args.out):
        print(path, *extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())

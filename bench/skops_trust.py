"""Does the .skops allow-list (converter/frameworks/sklearn/skops_trust.py) still load every model it should?

    python bench/skops_trust.py            # every model of the scikit-learn coverage family
    python bench/skops_trust.py --keep DIR # and keep the .skops files in DIR

Builds each model of bench/coverage_families/sklearn.py (as ``make coverage`` does, in one process),
and checks the .skops file it saves against the allow-list, without loading or converting it:
a minute here, where the coverage run takes half an hour. Run it after upgrading scikit-learn,
numpy, scipy or skops; a refused model names what to review. Exit 1 if any is refused.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.coverage_families import SkipCase, import_skops
from bench.coverage_families import sklearn as family


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="directory for the .skops files (default: a temporary one)")
    args = parser.parse_args()
    import_skops()  # skops without torch (see import_skops), before anything imports it
    from converter.frameworks.sklearn.backend import _skops_tree
    from converter.frameworks.sklearn.skops_trust import refusals

    directory = args.keep or Path(tempfile.mkdtemp(prefix="skops-trust-"))
    checked, refused = 0, 0
    for case in family.models():
        folder = directory / "".join(c if c.isalnum() else "_" for c in case.name)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                case.build(folder)
        except SkipCase:
            continue
        for path in folder.glob("*.skops"):  # none when skops cannot save the model (.joblib)
            checked += 1
            found = refusals(_skops_tree(path, path.read_bytes())[0])
            if found:
                refused += 1
                print(f"refused {case.name}: {', '.join(found)}")
    print(f"{checked - refused} of {checked} .skops files of the scikit-learn coverage family pass the allow-list")
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main())

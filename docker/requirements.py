"""Write the dependency lists of pyproject.toml, one file per extra, for the Docker build.

    python requirements.py pyproject.toml OUT_DIR  ->  OUT_DIR/core.txt, OUT_DIR/<extra>.txt

A stage of its own in the Dockerfile: an edit elsewhere in pyproject.toml (tool settings) then
makes the same files, and the classic builder keeps its cached dependency layers.
"""

import sys
import tomllib
from pathlib import Path

with open(sys.argv[1], "rb") as file:
    project = tomllib.load(file)["project"]
out = Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
(out / "core.txt").write_text("\n".join(project["dependencies"]) + "\n")
for extra, requirements in project["optional-dependencies"].items():
    (out / f"{extra}.txt").write_text("\n".join(requirements) + "\n")

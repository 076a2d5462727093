#!/bin/sh
# compile.sh: requirements/constraints.in -> constraints.txt (every package, pinned) -> one hashed
# requirements file per install, each pinned to constraints.txt. Run from the directory that holds
# pyproject.toml and requirements/ (make requirements; make requirements-check runs it in a copy).
#   UV            the uv to run (make venv installs it: requirements/dev.in)
#   TORCH_WHEELS  the folder holding the torch CPU wheel: torch==...+cpu resolves there, never to
#                 PyPI's CUDA build, and its hash is that wheel's
# uv keeps the versions an existing output file holds unless the .in asks for others, so a run
# changes only what constraints.in changed.
set -eu
: "${UV:?set UV to a uv executable}" "${TORCH_WHEELS:?set TORCH_WHEELS to the folder of the torch CPU wheel}"
compile() {
  "$UV" pip compile --quiet --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
    --find-links "$TORCH_WHEELS" --custom-compile-command "make requirements" "$@"
}
# The versions: a plain list, usable with pip's -c (pip cannot install an editable project against
# a constraints file that holds hashes: it requires a hash for the project too).
compile requirements/constraints.in -o requirements/constraints.txt
# The installs: each complete and hashed, for pip install --require-hashes -r.
pinned="--generate-hashes -c requirements/constraints.txt"
# shellcheck disable=SC2086  # $pinned is several words
{
  compile $pinned pyproject.toml -o requirements/core.txt
  for extra in sklearn pytorch tensorflow; do
    compile $pinned pyproject.toml --extra "$extra" -o "requirements/$extra.txt"
  done
  compile $pinned pyproject.toml --all-extras -o requirements/full.txt
  compile $pinned pyproject.toml --all-extras requirements/dev.in -o requirements/dev.txt
  # torchvision (timm's dependency) apart: PyPI's build for this torch cannot load its C ops, and
  # installed in the venv it breaks transformers' vision models (their import finds it and fails).
  # bench-torchvision.txt goes into a folder of its own that only the timm family imports from.
  compile $pinned pyproject.toml --all-extras requirements/dev.in requirements/bench.in \
    --no-emit-package torchvision -o requirements/bench.txt
  compile $pinned --no-deps requirements/bench-torchvision.in -o requirements/bench-torchvision.txt
  compile $pinned --no-deps requirements/bench-keras-hub.in -o requirements/bench-keras-hub.txt
}

#!/bin/sh
# install-deps.sh INSTALL: install requirements/INSTALL.txt (core, sklearn, pytorch, tensorflow or
# full) into the active virtualenv with --require-hashes: every package, dependencies included,
# must be a file whose sha256 the requirements file lists (make requirements compiles them from
# requirements/constraints.in). Dockerfile only.
set -eu
file=/src/requirements/$1.txt
# torch is the CPU build, pinned with its wheel's hash (PyPI's is the CUDA build): a wheel left in
# docker/wheels/ if there is one, else PyTorch's CPU index. The index is asked for torch alone, so
# an unreachable index costs nothing when the wheel is local.
if grep -q '^torch==' "$file" && ! ls /src/wheels/torch-*.whl >/dev/null 2>&1; then
  # the torch line and its hashes, up to its "# via" comment
  awk '/^torch==/ { found = 1 } found && /^ *#/ { exit } found' "$file" > /tmp/torch.txt
  pip install --require-hashes --no-deps --index-url https://download.pytorch.org/whl/cpu -r /tmp/torch.txt
fi
pip install --require-hashes --find-links /src/wheels -r "$file"

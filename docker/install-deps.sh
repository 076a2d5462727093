#!/bin/sh
# install-deps.sh [EXTRA... | all]: install the project's dependencies plus the named extras
# (or every extra of pyproject.toml) into the active virtualenv, at the pins of
# requirements/constraints.txt. The lists come from docker/requirements.py. Dockerfile only.
set -eu
cd /src/requirements
if [ "${1:-}" = all ]; then
  # shellcheck disable=SC2046  # one word per extra
  set -- $(ls -- *.txt | sed 's/\.txt$//' | grep -vx core)
fi
files=core.txt
for extra in "$@"; do files="$files $extra.txt"; done
# PyPI's torch is the multi-GB CUDA build: install the CPU build first, from a wheel left in
# docker/wheels/ if there is one, else from PyTorch's CPU index. The index is asked for torch
# alone, so an unreachable index costs nothing when the wheel is local.
# shellcheck disable=SC2086  # one word per file
if grep -qiE '^torch([<>=!~ ;[]|$)' $files && ! python -c "import importlib.metadata as m; m.version('torch')" 2>/dev/null; then
  if ls /src/wheels/torch-*.whl >/dev/null 2>&1; then
    pip install --no-deps --no-index --find-links /src/wheels -c /src/constraints.txt torch
  else
    pip install --no-deps --index-url https://download.pytorch.org/whl/cpu -c /src/constraints.txt torch
  fi
fi
# shellcheck disable=SC2086,SC2046  # one -r per file
pip install -c /src/constraints.txt $(printf -- '-r %s ' $files)

#!/bin/sh
# install-deps.sh EXTRA...: install the project's dependencies plus the named extras
# (sklearn, pytorch, tensorflow) into the active virtualenv, at the pins of
# requirements/constraints.txt. Used by the Dockerfile only.
set -eu
python - "$@" >/tmp/requirements.txt <<'PY'
import sys
import tomllib

# pyproject.toml is the one list of dependencies; the image must not keep a second one.
with open("/src/pyproject.toml", "rb") as file:
    project = tomllib.load(file)["project"]
requirements = list(project["dependencies"])
for extra in sys.argv[1:]:
    requirements += project["optional-dependencies"][extra]
print("\n".join(requirements))
PY
case " $* " in
  *" pytorch "*)
    # PyPI's torch is the multi-GB CUDA build: install the CPU build first, from a wheel
    # left in docker/wheels/ if there is one, else from PyTorch's CPU index. The index is
    # only asked for torch itself, so an unreachable index costs nothing when wheels are local.
    if ! python -c "import importlib.metadata as m; m.version('torch')" 2>/dev/null; then
      if ls /src/wheels/torch-*.whl >/dev/null 2>&1; then
        pip install --no-deps --no-index --find-links /src/wheels -c /src/constraints.txt torch
      else
        pip install --no-deps --index-url https://download.pytorch.org/whl/cpu -c /src/constraints.txt torch
      fi
    fi
    ;;
esac
pip install -c /src/constraints.txt -r /tmp/requirements.txt
rm -f /tmp/requirements.txt

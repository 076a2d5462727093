# onnx-convert-action: the CLI and the GitHub Action in one image.
#
#   docker build -t onnx-convert .                      # full (default): every framework
#   docker build --target sklearn -t onnx-convert:sklearn .   # or pytorch, tensorflow
#   docker run --rm -v "$PWD:/github/workspace" onnx-convert --model-path model.skops
#
# Versions are the pins of requirements/constraints.txt; the dependency lists are pyproject.toml's
# (docker/requirements.py reads them, docker/install-deps.sh installs them). torch is the CPU
# build: docker/wheels/ is searched first (empty in git), then PyTorch's CPU index.
#
# Written for the classic builder too (act builds docker actions with it): no RUN --mount, no
# heredocs, no syntax directive (that would pull a frontend image). The classic builder builds
# every stage before the target, so the framework stages share as many layers as they can.
# No USER and no WORKDIR: GitHub runs docker actions as root with --workdir /github/workspace.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# --- build stages: one virtualenv per framework set -------------------------------------------
# The dependency lists of pyproject.toml, one file per extra: an edit to its tool settings makes
# the same files, so the cached dependency layers below stay valid.
FROM base AS requirements
COPY pyproject.toml docker/requirements.py /src/
RUN python /src/requirements.py /src/pyproject.toml /requirements

FROM base AS deps-core
RUN python -m venv /opt/venv
COPY requirements/constraints.txt docker/install-deps.sh /src/
COPY --from=requirements /requirements/ /src/requirements/
COPY docker/wheels/ /src/wheels/
RUN sh /src/install-deps.sh

FROM deps-core AS deps-sklearn
RUN sh /src/install-deps.sh sklearn

FROM deps-core AS deps-pytorch
RUN sh /src/install-deps.sh pytorch

FROM deps-core AS deps-tensorflow
RUN sh /src/install-deps.sh tensorflow

# Every extra of pyproject.toml. On top of the tensorflow stage: the classic builder then
# downloads tensorflow once, not twice.
FROM deps-tensorflow AS deps-full
RUN sh /src/install-deps.sh all

# The project itself, as a wheel (its code changes more often than the dependencies).
FROM base AS project
COPY pyproject.toml README.md /src/
COPY converter/ /src/converter/
RUN pip wheel --no-deps --wheel-dir /dist /src

# --- images: the base, one virtualenv, the project ---------------------------------------------
FROM base AS sklearn
COPY --from=deps-sklearn /opt/venv /opt/venv
COPY --from=project /dist/ /tmp/dist/
RUN pip install --no-deps /tmp/dist/*.whl && rm -rf /tmp/dist
COPY entrypoint.py /opt/onnx-convert/entrypoint.py
ENTRYPOINT ["/opt/venv/bin/python", "/opt/onnx-convert/entrypoint.py"]

FROM base AS pytorch
COPY --from=deps-pytorch /opt/venv /opt/venv
COPY --from=project /dist/ /tmp/dist/
RUN pip install --no-deps /tmp/dist/*.whl && rm -rf /tmp/dist
COPY entrypoint.py /opt/onnx-convert/entrypoint.py
ENTRYPOINT ["/opt/venv/bin/python", "/opt/onnx-convert/entrypoint.py"]

FROM base AS tensorflow
COPY --from=deps-tensorflow /opt/venv /opt/venv
COPY --from=project /dist/ /tmp/dist/
RUN pip install --no-deps /tmp/dist/*.whl && rm -rf /tmp/dist
COPY entrypoint.py /opt/onnx-convert/entrypoint.py
ENTRYPOINT ["/opt/venv/bin/python", "/opt/onnx-convert/entrypoint.py"]

# Last stage, so the default: the GitHub Action builds this one.
FROM base AS full
COPY --from=deps-full /opt/venv /opt/venv
COPY --from=project /dist/ /tmp/dist/
RUN pip install --no-deps /tmp/dist/*.whl && rm -rf /tmp/dist
COPY entrypoint.py /opt/onnx-convert/entrypoint.py
ENTRYPOINT ["/opt/venv/bin/python", "/opt/onnx-convert/entrypoint.py"]

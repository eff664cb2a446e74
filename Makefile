# Two commands do all of the set-up on a fresh machine:
#   make demo   trains a small model, logs to the embedded MLflow store, writes a report, prints where to look
#   make test   passes the tests
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch 2.13.0 (on this machine's disk); nothing may pull a multi-GB CUDA build.
TORCH_PIN := torch==2.13.0
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha1sum | cut -c1-10)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test targets test-fast lint typecheck doctest bench venv browser clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_PIN)"
	$(BIN)/python -m pip install -q -e ".[dev]" "$(TORCH_PIN)"
	@rm -f $(VENV)/.installed-* && touch $@

# Headless Chromium for the dashboard checks (Debian package; best effort where apt is not available).
browser:
	@command -v chromium >/dev/null 2>&1 || { (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq --no-install-recommends chromium >/dev/null) || echo "chromium not installed"; }

demo: $(STAMP)
	$(BIN)/python examples/toy_upsampler.py

# The whole check: lint, types, then the tests and the docstrings' examples in one pytest run.
# Two pytest workers (pytest-xdist): one test file stays on one worker (its module fixtures are made once),
# the tests that share the demo run (toy_run) or a server stay together (tests/conftest.py
# pytest_xdist_make_scheduler); TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2

test: $(STAMP) browser lint typecheck
	@set +e; $(BIN)/python -m pytest -q -p no:cacheprovider -m "not targets" -n $(TEST_WORKERS) --dist loadgroup --durations=30 tests trackdiag --doctest-modules; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; rc=0; fi; exit $$rc

# The open issues' targets, measured on generated data (expected failures until met; a minute or two).
targets: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m targets -rxX tests

# The inner loop: everything not marked slow (about two minutes).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow" --durations=15 tests trackdiag --doctest-modules

lint: $(STAMP)
	$(BIN)/ruff check trackdiag tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy

doctest: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider --doctest-modules trackdiag

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build dist *.egg-info mlruns.db mlruns trackdiag_runs demo_out outputs

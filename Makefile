# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The sandbox's demo token: it works only against the embedded emulator.
DEMO_PAT := sandbox-demo-pat

.PHONY: demo test bench manifests install lock clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements/test.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The test and CI environment, pinned with hashes (requirements/test.lock, made by `make lock`).
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/test.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	# Ship bytecode like a deployed bundle: a cold `adobot run` then compiles nothing.
	$(BIN)/python -m compileall -q adobot
	touch $(STAMP)

demo: $(STAMP)
	ADOBOT_PAT=$(DEMO_PAT) $(BIN)/adobot run examples/quickstart.yaml --sandbox --var-env pat=ADOBOT_PAT

test: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || echo "NOTE: Chromium is not installed: the browser tests of the control room's page will be SKIPPED (apt-get install chromium; .ci/run installs it)."
	@$(BIN)/python -m tests.postgres
	$(BIN)/python -m pytest $(PYTEST_ARGS)

manifests: $(STAMP)
	$(BIN)/adobot manifest --write

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Re-resolve requirements/test.lock from pyproject.toml (pip-tools, in a throwaway venv).
lock:
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet pip-tools
	.lock-venv/bin/pip-compile --quiet --generate-hashes --extra test --extra control-room --extra postgresql --extra mcp --strip-extras \
		--no-emit-index-url --no-emit-find-links --output-file requirements/test.lock pyproject.toml
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

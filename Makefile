# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The sandbox's demo token: it works only against the embedded emulator.
DEMO_PAT := sandbox-demo-pat

.PHONY: demo test bench manifests install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# Ship bytecode like a deployed bundle: a cold `adobot run` then compiles nothing.
	$(BIN)/python -m compileall -q actions sessions credentials rest runtime sandbox
	touch $(STAMP)

demo: $(STAMP)
	ADOBOT_PAT=$(DEMO_PAT) $(BIN)/adobot run examples/quickstart.yaml --sandbox --var-env pat=ADOBOT_PAT

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

manifests: $(STAMP)
	$(BIN)/adobot manifest --write

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

# Two entry points (see README): `make lab` runs the notebook workbench, `make test` runs every check.
# Both create or refresh the local virtualenv (and the Node.js interop peers) by themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := interop/node_modules/.installed
PYTEST_ARGS ?=

.PHONY: lab test lint typecheck venv node chromium clean bench stack

venv: $(STAMP)
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" >/dev/null
	@touch $@

# Virgil's JS peers (virgil-crypto, e3kit-node) for interop tests, pinned by interop/package-lock.json.
node: $(NODE_STAMP)
$(NODE_STAMP): interop/package.json interop/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  cd interop && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else echo "npm not found: Node.js interop tests will be skipped"; fi

# Debian's Chromium for the real-browser notebook check (needs root or an existing install).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (export DEBIAN_FRONTEND=noninteractive; apt-get install -y -qq chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium)) \
	    || echo "could not install chromium: browser test will be skipped"; \
	  else echo "chromium missing and not root: browser test will be skipped"; fi; }

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: venv node chromium lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lab: venv
	$(BIN)/jupyter lab --notebook-dir=notebooks --ServerApp.ip=127.0.0.1 $$([ "$$(id -u)" = 0 ] && echo --allow-root)

stack: venv
	$(BIN)/python -m mock_services

bench: venv node
	$(BIN)/python benchmarks/bench_crypto.py

clean:
	rm -rf $(VENV) interop/node_modules .pytest_cache .mypy_cache .ruff_cache

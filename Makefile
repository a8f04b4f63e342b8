# Two commands set up a fresh machine (Python >= 3.11 with venv is all it needs):
#   make run    install into .venv, start a local server, solve the built-in example, print it
#   make test   install into .venv (with test tools) and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: run test lint bench proto clean

$(BIN)/.installed: pyproject.toml
	@echo "installing Lepton Allocator and its dependencies into $(VENV) (first run only; about a minute) ..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# PYTHONWARNINGS: setuptools' 10-line notice on editable installs of mapped package dirs
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet --progress-bar off -e '.[dev,ray]'
	@echo "installed: $$($(BIN)/python -m pip list 2>/dev/null | grep -ciE 'pyomo|highspy|grpcio|pydantic') core packages in $(VENV)"
	touch $@

run: $(BIN)/.installed
	$(BIN)/lepton-alloc demo

# pytest exit code 5 means "no tests collected": not a failure of the suite itself.
# LEPTON_BUF: buf (npm @bufbuild/buf, installed into .tools/ by .ci/ensure-buf) for the generic
# gRPC client tests; empty when it cannot be installed, and those tests are then skipped.
# LEPTON_NODE: node for the Node.js client tests, its npm packages installed into
# tests/server/node/node_modules by .ci/ensure-node-deps; empty (tests skipped) when it cannot.
# LEPTON_CHROMIUM: a headless chromium for the HTML report's browser test (Debian's chromium, apt-get installed
# by .ci/ensure-chromium when missing and root); empty (that test skipped, saying why) when it cannot be had.
# LEPTON_TEST_POSTGRES: the url of a throwaway PostgreSQL server (Debian's postgresql, installed and
# started on 127.0.0.1 by .ci/ensure-postgres); the store and two-server tests run against it too.
test: $(BIN)/.installed
	LEPTON_BUF="$$(.ci/ensure-buf)" LEPTON_NODE="$$(.ci/ensure-node-deps)" LEPTON_CHROMIUM="$$(.ci/ensure-chromium)" LEPTON_TEST_POSTGRES="$$(.ci/ensure-postgres)" $(BIN)/python -m pytest -q $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy models server clients proto/adapter.py

bench: $(BIN)/.installed
	$(BIN)/python bench/bench_build.py
	$(BIN)/python bench/bench_service.py
	$(BIN)/python bench/bench_grpc.py
	$(BIN)/python bench/bench_import.py

proto: $(BIN)/.installed
	$(BIN)/python proto/generate.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .tools tests/server/node/node_modules

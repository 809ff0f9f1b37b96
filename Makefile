# The two commands of the README: `make serve` and `make test`. Both set up .venv from the lock.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
OPS_VENV := .venv-ops
OPS_STAMP := $(OPS_VENV)/.installed-$(shell cat ops/requirements-tools.lock | cksum | cut -d' ' -f1)

.PHONY: serve test test-quick lint ops-check ops-tools convert bench clean

serve: $(STAMP)  ## train+export the model if missing, then serve on http://127.0.0.1:8000
	$(BIN)/gridscore serve

test: $(STAMP) $(OPS_STAMP) lint  ## the full suite, as CI runs it (ops tools included)
	$(BIN)/pytest

test-quick: $(STAMP)  ## the quick set: no slow or system-tool tests
	$(BIN)/pytest -m "not slow and not system"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

ops-check: $(STAMP) $(OPS_STAMP)  ## yamllint, kustomize, kubernetes-validate, hadolint, checkov, promtool
	$(BIN)/python ops/check.py

ops-tools: $(OPS_STAMP)  ## .venv-ops: podman-compose and the ops check's tools (docs/deploying.md)

convert: $(STAMP)
	$(BIN)/python -m convert

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $@

# The ops tools live in their own environment: checkov's pins must not steer the project's.
$(OPS_STAMP): ops/requirements-tools.lock
	test -x $(OPS_VENV)/bin/python || $(PYTHON) -m venv $(OPS_VENV)
	$(OPS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(OPS_VENV)/bin/python -m pip install --quiet -r ops/requirements-tools.lock
	rm -f $(OPS_VENV)/.installed-*
	touch $@

clean:
	rm -rf $(VENV) $(OPS_VENV) models .pytest_cache .mypy_cache .ruff_cache

# The two commands of the README: `make serve` and `make test`. Both set up .venv from the lock.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml ops/locks/pip.lock | cksum | cut -d' ' -f1)
OPS_VENV := .venv-ops
OPS_STAMP := $(OPS_VENV)/.installed-$(shell cat ops/requirements-tools.lock ops/locks/pip.lock | cksum | cut -d' ' -f1)

.PHONY: serve test test-quick lint ops-check ops-tools convert bench audit locks sbom clean

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

# Every lock file against the known vulnerabilities; exit 3 when the service cannot be reached
# (docs/security.md). The allow-list, each entry with a reason and an expiry: ops/audit-allow.json.
audit: $(OPS_STAMP)
	$(OPS_VENV)/bin/python ops/audit.py

# Each built image's CycloneDX SBOM into sbom/ (python3 ops/images.py all builds the images,
# each with its SBOM inside; docs/security.md).
sbom:
	$(PYTHON) ops/images.py sbom

# Recompile every lock, hashes included, keeping the versions pinned unless an input changed:
# the project's (requirements.lock), the ops tools' and each image's (ops/locks/*.in, with the
# project's lock as constraints, so an image runs the versions the tests ran).
UV_COMPILE = $(BIN)/uv pip compile --quiet --python-version 3.11 --generate-hashes \
	--custom-compile-command "make locks"
locks: $(STAMP)
	$(UV_COMPILE) pyproject.toml --extra train --extra dev -o requirements.lock
	$(UV_COMPILE) ops/requirements-tools.in -o ops/requirements-tools.lock
	$(UV_COMPILE) ops/locks/pip.in -o ops/locks/pip.lock
	for image in train scorer dashboard nats; do \
	  $(UV_COMPILE) ops/locks/$$image.in -c requirements.lock -o ops/locks/$$image.lock || exit 1; \
	done

convert: $(STAMP)
	$(BIN)/python -m convert

$(STAMP): requirements.lock pyproject.toml ops/locks/pip.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# Every package checked against the lock's sha256 (a changed file on the index fails here),
	# pip itself first.
	$(BIN)/python -m pip install --quiet --require-hashes -r ops/locks/pip.lock
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $@

# The ops tools live in their own environment: checkov's pins must not steer the project's.
$(OPS_STAMP): ops/requirements-tools.lock ops/locks/pip.lock
	test -x $(OPS_VENV)/bin/python || $(PYTHON) -m venv $(OPS_VENV)
	$(OPS_VENV)/bin/python -m pip install --quiet --require-hashes -r ops/locks/pip.lock
	$(OPS_VENV)/bin/python -m pip install --quiet --require-hashes -r ops/requirements-tools.lock
	rm -f $(OPS_VENV)/.installed-*
	touch $@

clean:
	rm -rf $(VENV) $(OPS_VENV) models .pytest_cache .mypy_cache .ruff_cache

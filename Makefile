# newsflow: `make demo` and `make test` are the whole setup on a fresh Debian/Ubuntu machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CODE := producer worker tests bench scripts

.PHONY: install redis test test-fast test-redis test-e2e demo lint format docs bench bench-full clean lock lock-upgrade compose-test

# Debian and Ubuntu ship venv apart (python3-venv): installed with apt when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
		echo "== installing python3-venv (apt)"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null && \
		$(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

redis:
	@scripts/ensure-redis.sh

# The whole suite: unit, real Redis and real worker processes.
test: install redis
	$(BIN)/python -m pytest

# The edit-test loop: pure unit tests, no services, well under a minute.
test-fast: install
	$(BIN)/python -m pytest -q -m unit

test-redis: install redis
	$(BIN)/python -m pytest -q -m redis

test-e2e: install redis
	$(BIN)/python -m pytest -q -m e2e

demo: install redis
	$(BIN)/python scripts/demo.py

# What CI checks before the tests (.ci/run) and pre-commit checks before a commit.
lint: install
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix $(CODE)
	$(BIN)/ruff format $(CODE)

# Regenerate the tables in docs/ that the code holds (a test fails when they drift).
docs: install
	$(BIN)/python scripts/gen_docs.py

bench: install redis
	$(BIN)/python -m bench.run --profile quick

bench-full: install redis
	$(BIN)/python -m bench.run --profile full

# requirements.lock: every package of the image, pinned with hashes. Rewritten when pyproject.toml or
# requirements.lock.in changes; pins already in it are kept unless `make lock-upgrade`.
LOCK_FLAGS := --quiet --generate-hashes --allow-unsafe --strip-extras --extra fast --extra ops \
	--no-emit-find-links --no-emit-index-url --no-emit-trusted-host

requirements.lock: pyproject.toml requirements.lock.in | $(BIN)/.installed
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile $(LOCK_FLAGS) --output-file $@ pyproject.toml requirements.lock.in

lock: requirements.lock

lock-upgrade: install
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile $(LOCK_FLAGS) --upgrade --output-file requirements.lock pyproject.toml requirements.lock.in

# The compose stack for real (docs/compose.md); says why and passes when there is no Docker engine.
compose-test: install requirements.lock
	$(BIN)/python scripts/compose_smoke.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache .import_linter_cache

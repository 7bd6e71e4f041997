# newsflow: `make demo` and `make test` are the whole setup on a fresh Debian/Ubuntu machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CODE := producer worker tests bench scripts

.PHONY: install redis test test-fast test-redis test-e2e demo lint format docs bench bench-full clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
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

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache .import_linter_cache

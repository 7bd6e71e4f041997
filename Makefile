# newsflow: `make demo` and `make test` are the whole setup on a fresh Debian/Ubuntu machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install redis test demo lint bench bench-full clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

redis:
	@scripts/ensure-redis.sh

test: install redis
	$(BIN)/python -m pytest

demo: install redis
	$(BIN)/python scripts/demo.py

lint: install
	$(BIN)/ruff check producer worker tests bench scripts

bench: install redis
	$(BIN)/python -m bench.run --profile quick

bench-full: install redis
	$(BIN)/python -m bench.run --profile full

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache

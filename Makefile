# Two commands on a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-anju
PYTEST_ARGS ?=
BENCH_SIZE ?= full

.PHONY: run test lint typecheck format bench schema install clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## make run: embedded PostgreSQL (unless ANJU_DATABASE_URL is set), migrations, demo tenant,
## server on http://127.0.0.1:8000/graphql. Ctrl-C stops it; data stays in ./.anju/.
run: install
	$(BIN)/anju serve --seed-demo

## make test: lint, format check, type check, the whole suite against a real PostgreSQL
## (embedded by default; ANJU_TEST_DATABASE_URL to use a server).
test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest $(PYTEST_ARGS)

typecheck: install
	$(BIN)/mypy

lint: install
	$(BIN)/ruff check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

schema: install
	$(BIN)/anju schema export

## make bench [BENCH_SIZE=small]: benchmarks (not part of make test).
bench: install
	$(BIN)/python -m bench.run --size $(BENCH_SIZE)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info

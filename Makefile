# Two commands on a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-anju
PYTEST_ARGS ?=
BENCH_SIZE ?= full

.PHONY: run test lint typecheck format bench schema install clean console console-test

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## make console: the web console (console/, Node.js 20.19+) built into console/dist, which the
## gateway serves at /console/ (and GraphiQL's files). Rebuilt only when a source is newer than
## the build (make compares their times).
CONSOLE_SOURCES := $(shell find console/src console/scripts -type f -not -path 'console/src/gql/*' 2>/dev/null) \
	$(wildcard console/*.html console/*.ts console/package.json) mobile_contracts/schema.graphql
CONSOLE_BUILD := console/dist/build.json
CONSOLE_DEPS := console/node_modules/.package-lock.json

$(CONSOLE_DEPS): console/package-lock.json
	cd console && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(CONSOLE_BUILD): $(CONSOLE_DEPS) $(CONSOLE_SOURCES)
	cd console && npm run --silent build

console: $(CONSOLE_BUILD)

## make console-test: the console's component tests (Vitest).
console-test: $(CONSOLE_DEPS)
	cd console && npm test --silent

## make run: embedded PostgreSQL (unless ANJU_DATABASE_URL is set), migrations, demo tenant,
## server on http://127.0.0.1:8000/graphql. Ctrl-C stops it; data stays in ./.anju/.
run: install
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory console; \
	else echo "make run: no Node.js here, so the console is not (re)built (docs/console.md)"; fi
	$(BIN)/anju serve --seed-demo

## make test: lint, format check, type check, the whole suite against a real PostgreSQL
## (embedded by default; ANJU_TEST_DATABASE_URL to use a server).
test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	@if [ -d console/node_modules ]; then $(MAKE) --no-print-directory console-test; \
	else echo "make test: console/node_modules is missing, Vitest tests not run (make console)"; fi
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
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info console/dist console/node_modules

# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)  ## start a local PostgreSQL with sample data and replicate it
	$(BIN)/repl demo

# Tests mostly wait for servers and replication workers: several run at once, each
# worker with clusters of its own (pytest-xdist).
TEST_WORKERS ?= 4

test: $(STAMP)  ## the whole suite, against real PostgreSQL servers
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

lint: $(STAMP)
	$(BIN)/ruff check replication tests bench

clean:
	rm -rf $(VENV) .pytest_cache

# The two contract commands (`make run`, `make test`) plus lint and bench.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MODELS_DIR ?= models
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint bench train clean

# Reinstall whenever pyproject.toml changes; the stamp records the last install.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	test -f $(MODELS_DIR)/latest || $(BIN)/python -m training --models-dir $(MODELS_DIR)
	MODELS_DIR=$(MODELS_DIR) $(BIN)/python -m service --host $(HOST) --port $(PORT)

train: $(STAMP)
	$(BIN)/python -m training --models-dir $(MODELS_DIR)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest

# The performance benchmark (issue 7): all four servers, one table; see benchmarks/README.md.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

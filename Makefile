# The two contract commands (`make run`, `make test`) plus lint and bench.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MODELS_DIR ?= models
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint bench train clean system-packages

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

# What the tests run beside the project, from Debian's packages: nginx in front of several
# service processes, redis-server for the shared rate limits (the machine's own service is
# left alone: tests start and stop their own), chromium for the dashboard's browser tests.
SYSTEM_COMMANDS := /usr/sbin/nginx /usr/bin/redis-server /usr/bin/chromium
SYSTEM_PACKAGES := nginx redis-server chromium

system-packages:
	@for command in $(SYSTEM_COMMANDS); do test -x $$command || missing=1; done; \
	if [ -n "$$missing" ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $(SYSTEM_PACKAGES) >/dev/null; \
	fi

test: lint system-packages
	$(BIN)/python -m pytest

# The performance benchmark (issue 7): all four servers, one table; see benchmarks/README.md.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

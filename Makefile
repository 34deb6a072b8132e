# Two commands for a newcomer: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Reinstall only when the package definition changes.
STAMP := $(VENV)/.installed

.PHONY: run test lint check-redis

run: $(STAMP)
	$(BIN)/homeroom serve --demo

test: $(STAMP) check-redis lint
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e '.[test]'
	touch $@

# The store tests run against a real redis-server (or REDIS_URL, when set).
check-redis:
	@if [ -n "$$REDIS_URL" ] || command -v redis-server >/dev/null 2>&1; then \
		exit 0; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "redis-server is missing; installing the Debian package"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server; \
	else \
		echo "redis-server is missing. Install it, then run make test again:"; \
		echo "  Debian/Ubuntu: sudo apt-get install redis-server"; \
		echo "  macOS:         brew install redis"; \
		echo "or point REDIS_URL at a Redis you run (the tests use their own key prefixes)."; \
		exit 1; \
	fi

# Two commands for a newcomer: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Reinstall only when the package definition or the lock changes.
STAMP := $(VENV)/.installed
# Every dependency, direct or not, pinned with its hashes: make, the Dockerfile and CI install
# exactly these files and nothing the resolver picks on the day.
LOCK := requirements.lock
# The runtime half of the same pins (no test tools), for the Docker image.
APP_LOCK := requirements-app.lock

.PHONY: run test lint lock check-redis bench check-chromium check-janus check-coturn \
	check-compose compose-config assets screenshots fuzz

run: $(STAMP) assets check-janus
	$(BIN)/homeroom serve --demo

test: $(STAMP) assets check-redis check-chromium check-janus check-coturn compose-config lint
	$(BIN)/pytest

# The fuzz suites alone (part of make test too), with each suite's count of inputs.
FUZZ_TESTS := tests/test_fuzz_events.py tests/test_fuzz_rest.py tests/test_fuzz_frames.py \
	tests/test_fuzz_http.py tests/test_fuzz_total.py
fuzz: $(STAMP) check-redis
	$(BIN)/pytest -q -s $(FUZZ_TESTS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/pip install --require-hashes -r $(LOCK)
	$(BIN)/pip install --no-deps -e .
	touch $@

# Regenerates the lock after a change to pyproject.toml's dependencies. Pins already in the lock
# stay unless UPGRADE=1 (then every package moves to its newest allowed release). pip-tools
# lives in a venv of its own so it never changes a package the lock pins.
LOCK_TOOLS := $(VENV)/lock-tools
lock: | $(BIN)/python
	@[ -x $(LOCK_TOOLS)/bin/pip-compile ] || { \
		$(PYTHON) -m venv $(LOCK_TOOLS) && $(LOCK_TOOLS)/bin/pip install -q 'pip-tools>=7.4,<8'; }
	CUSTOM_COMPILE_COMMAND='make lock' $(LOCK_TOOLS)/bin/pip-compile --quiet --generate-hashes \
		--extra test --strip-extras --no-emit-index-url --no-emit-find-links \
		$(if $(UPGRADE),--upgrade) -o $(LOCK) pyproject.toml
	CUSTOM_COMPILE_COMMAND='make lock' $(LOCK_TOOLS)/bin/pip-compile --quiet --generate-hashes \
		--strip-extras --no-emit-index-url --no-emit-find-links -c $(LOCK) \
		-o $(APP_LOCK) pyproject.toml

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

# Group sessions are forwarded by Janus VideoRoom (Debian `janus`): `homeroom serve` starts it
# from config/janus/ and the media tests run it in a network namespace of their own.
check-janus:
	@if command -v janus >/dev/null 2>&1 || [ -x /usr/bin/janus ] || [ -x /usr/sbin/janus ]; then \
		exit 0; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "janus is missing; installing the Debian package"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y janus; \
	else \
		echo "janus is missing: group sessions fall back to the peer-to-peer mesh, and the"; \
		echo "group media tests will fail. Debian/Ubuntu: sudo apt-get install janus"; \
	fi

# The TURN tests relay real calls through coturn (Debian `coturn`, the turnserver binary).
check-coturn:
	@if command -v turnserver >/dev/null 2>&1 || [ -x /usr/bin/turnserver ]; then \
		exit 0; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "turnserver is missing; installing the Debian package coturn"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y coturn; \
	else \
		echo "turnserver is missing: the TURN tests need it. Debian/Ubuntu: sudo apt-get install coturn"; \
		exit 1; \
	fi

# No Docker daemon is needed to check docker-compose.yml: `docker-compose config` resolves it
# with .env.example's values and fails on a syntax error or a missing variable.
check-compose:
	@if command -v docker-compose >/dev/null 2>&1; then \
		exit 0; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "docker-compose is missing; installing the Debian package"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y docker-compose; \
	else \
		echo "docker-compose is missing. Debian/Ubuntu: sudo apt-get install docker-compose"; \
		exit 1; \
	fi

compose-config: check-compose
	docker-compose --env-file .env.example --profile scale config --quiet

# The pages' only third-party script, the socket.io client, comes from npm (web/package-lock.json)
# and is served from web/static/vendor: no CDN at run time. npm runs again only when the lock
# file changes.
NODE_STAMP := web/node_modules/.installed
SOCKETIO_JS := web/static/vendor/socket.io.min.js

assets: $(SOCKETIO_JS)

$(NODE_STAMP): web/package.json web/package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
		echo "npm is missing. Install Node.js 18 or newer with npm, then run make again:"; \
		echo "  Debian/Ubuntu: sudo apt-get install nodejs npm"; \
		exit 1; }
	cd web && npm ci --no-audit --no-fund
	touch $@

$(SOCKETIO_JS): $(NODE_STAMP)
	mkdir -p $(dir $@)
	cp web/node_modules/socket.io-client/dist/socket.io.min.js $@

# The page tests drive Debian's chromium through Playwright (never `playwright install`).
check-chromium:
	@if [ -x /usr/bin/chromium ]; then \
		exit 0; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "chromium is missing; installing the Debian package"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	else \
		echo "/usr/bin/chromium is missing: the page tests need Debian's chromium package."; \
		echo "  Debian/Ubuntu: sudo apt-get install chromium"; \
		exit 1; \
	fi

# Benchmarks against a floor (bench/README.md). QUICK=1 runs small sizes to check the bench
# works; the full run takes several minutes and wants a quiet machine. Needs thousands of
# descriptors for the idle endpoints, and py-spy for the profile.
bench: $(STAMP) check-redis check-janus
	@[ -x $(BIN)/py-spy ] || $(BIN)/pip install py-spy
	ulimit -n 16384 2>/dev/null || ulimit -n $$(ulimit -Hn); \
		$(BIN)/python -m bench $(if $(QUICK),--quick)

# Screenshots of the pages at phone (390x844, 360x640) and laptop (1366x768) sizes into
# SCREENSHOTS_DIR (default screenshots/, git-ignored), by the test that checks their layout.
SCREENSHOTS_DIR ?= $(CURDIR)/screenshots
screenshots: $(STAMP) assets check-chromium
	SCREENSHOTS_DIR=$(SCREENSHOTS_DIR) $(BIN)/pytest tests/test_layout.py -q

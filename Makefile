# The two commands of the README: `make test` and `make run`.
# Both work on a fresh Debian machine with only Python 3.11+.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test run lint format redis-server clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The tests run a real redis-server; install Debian's when it is missing and we are root.
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing redis-server (Debian package)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	  else \
	    echo "redis-server is needed: install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis)"; \
	    exit 1; \
	  fi; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The test session starts its own redis-server on a free port and stops it at the end.
test: $(STAMP) redis-server lint
	$(BIN)/python -m pytest -q

run: $(STAMP)
	$(BIN)/python -m bot serve --or-local

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

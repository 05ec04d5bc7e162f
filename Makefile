# The two commands of the README: `make test` and `make run`.
# Both work on a fresh Debian machine with only Python 3.11+: they make .venv, put uv in it
# with pip, and install exactly the versions of uv.lock (what CI tested) with `uv sync`.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
UV := $(BIN)/uv
UV_STAMP := $(VENV)/.uv-$(UV_VERSION)
STAMP := $(VENV)/.installed
# uv syncs this folder whatever virtualenv the calling shell has active.
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: test run bench bench-context lint format lock redis-server clean

# uv itself, pinned, from PyPI through the virtualenv's own pip. Debian's python3 makes no
# virtualenv without its python3-venv package: as root, it is installed first.
$(UV_STAMP):
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || { \
	  rm -rf $(VENV); \
	  $(PYTHON) -m venv $(VENV) >/dev/null 2>&1 || { \
	    rm -rf $(VENV); \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	      echo "installing python3-venv (Debian package), needed to make $(VENV)"; \
	      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; \
	    fi; \
	    $(PYTHON) -m venv $(VENV) || { \
	      echo "$(PYTHON) cannot make a virtualenv: install its venv module (Debian/Ubuntu: sudo apt-get install python3-venv)"; \
	      exit 1; }; }; }
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"
	rm -f $(VENV)/.uv-*
	touch $(UV_STAMP)

# Exactly uv.lock; --locked refuses a lock that no longer matches pyproject.toml (run
# `make lock`), --inexact leaves pip and uv, which the lock does not list, in place.
$(STAMP): uv.lock pyproject.toml $(UV_STAMP)
	$(UV) sync --quiet --locked --inexact --extra dev || { \
	  echo "uv.lock does not match pyproject.toml: run make lock"; exit 1; }
	touch $(STAMP)

# After changing dependencies in pyproject.toml: resolve them again into uv.lock.
lock: $(UV_STAMP)
	$(UV) lock

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

# Four pytest-xdist workers (the tests mostly wait on the stand-ins and on processes, so more
# workers than the two cores CI has still shorten the run), all tests of a file on one (module
# fixtures are set up once); each worker's session starts its own redis-server on a free port
# and stops it at the end.
test: $(STAMP) redis-server lint
	$(BIN)/python -m pytest -q -n 4 --dist loadfile

run: $(STAMP)
	$(BIN)/python -m bot serve --or-local

# The benchmarks (bench/__init__.py says what they measure): the speed table, under 5
# minutes, then the context-budget table. They start their own redis-server on a free port
# and bot processes, and stop them. `make bench BENCH_ARGS="--help"` lists the knobs.
bench: $(STAMP) redis-server
	$(BIN)/python -m bench $(BENCH_ARGS)
	$(BIN)/python -m bench.context
	$(BIN)/python -m bench.materials

# What a turn of a 60-turn conversation is billed for, per backend, with and without the
# context budget (bench/context.py; about half a minute).
bench-context: $(STAMP) redis-server
	$(BIN)/python -m bench.context

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

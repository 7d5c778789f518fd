# The two set-up commands: `make run` and `make test`. Both work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test test-shifted openapi bench soak lint clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("imail needs Python 3.11+" if sys.version_info < (3, 11) else 0)'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/imail db upgrade
	$(BIN)/imail demo
	$(BIN)/imail serve --host $(HOST) --port $(PORT)

# The suite on every core (pytest-xdist), a test file per worker so a file's servers start once;
# TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= auto
test: install
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The suite with the system date a year ahead (needs the faketime package); SHIFT=+30d for a month.
test-shifted: install
	VENV=$(VENV) .ci/test-date-shifted $(PYTEST_ARGS)

openapi: install
	$(BIN)/imail openapi --output openapi.json

# ruff (format and lint), the layering contract (pyproject [tool.importlinter]) and mypy on src/ (strict on kit/).
lint: install
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/api.py

# Not part of CI: 30 minutes of mixed load on loopback (needs PostgreSQL, redis-server and Dovecot), failing on any
# error or an RSS growth above 10 %. Shorter: make soak SOAK_ARGS="--minutes 3"
soak: install
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) imail.db imail.db-* imail.db.secret .pytest_cache

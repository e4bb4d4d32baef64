# greenledger: `make run` serves the demo market, `make test` runs the whole suite.
# Without DATABASE_URL, `make run` uses an embedded PostgreSQL with its data in var/pgdata (config/embedded_db.py).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed-stamp
PIP_FLAGS ?= --quiet --disable-pip-version-check

.PHONY: install run test lint bench soak lock clean messages

$(STAMP): pyproject.toml config/constraints.txt
	@test -x $(PY) || (echo "Creating the virtualenv in $(VENV)" && $(PYTHON) -m venv $(VENV))
	@echo "Installing greenledger and its dependencies (pinned by config/constraints.txt)"
	@$(BIN)/pip install $(PIP_FLAGS) --upgrade pip
	@$(BIN)/pip install $(PIP_FLAGS) -c config/constraints.txt -e ".[dev]"
	@touch $(STAMP)

# The Chinese catalogue compiled by Babel (pure Python: no GNU gettext needed to install or run).
MO := locale/zh_Hans/LC_MESSAGES/django.mo
$(MO): locale/zh_Hans/LC_MESSAGES/django.po $(STAMP)
	@$(PY) -m config.catalogues compile

install: $(STAMP) $(MO)

# After adding or changing strings wrapped for translation: merge them into the catalogue (needs GNU
# gettext), then list what still needs a translation (exit status 1 while anything does). docs/i18n.md.
messages: install
	$(PY) manage.py translations update

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	GREENLEDGER_ORDER_ENGINE=$${GREENLEDGER_ORDER_ENGINE:-1} $(PY) manage.py serve

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	@# mypy's Django plugin imports the settings but never connects: a placeholder URL keeps it from starting
	@# the embedded PostgreSQL.
	DATABASE_URL=$${DATABASE_URL:-postgres://lint@127.0.0.1:1/lint} $(BIN)/mypy core accounts exchange config bench
	$(PY) manage.py makemigrations --check --dry-run

bench: install
	$(PY) -m bench

soak: install
	$(PY) -m bench.soak

# Re-pin every dependency to what resolves today (then run make test and commit the file).
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install $(PIP_FLAGS) -e ".[dev]"
	(echo "# Pinned versions for make install and CI; regenerate with 'make lock'."; \
	 .lock-venv/bin/pip freeze --exclude-editable | grep -v '^-e ') > config/constraints.txt
	rm -rf .lock-venv

# Stops the embedded PostgreSQL (var/pgdata) first if it still runs, then deletes its data with the rest.
clean:
	@if [ -f var/pgdata/postmaster.pid ] && [ -x $(PY) ]; then $(PY) -m config.embedded_db stop; fi
	rm -rf $(VENV) var .pytest_cache .hypothesis .mypy_cache .ruff_cache

# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PORT

.PHONY: install run test test-postgres lint format demo bench-poll clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

## Start everything: migrate, IFTTT's OAuth app, demo data, web + background worker on http://127.0.0.1:$(PORT)
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py setup_ifttt
	$(PY) manage.py seed_demo
	$(PY) manage.py serve --port $(PORT)

## Run the test suite (SQLite unless DATABASE_URL is set)
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

## The suite on PostgreSQL (as CI runs it)
test-postgres: install
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/iftttsvc} $(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench-poll: install
	$(PY) bench/poll.py

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache

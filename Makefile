# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PORT

.PHONY: install run test test-postgres lint format demo review recipes bench-poll bench-realtime bench-oauth bench-scripts bench-admin bench-api-log bench-capacity screenshots clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# moment.js, moment-timezone and acorn for the connection-script sandbox, exactly as package-lock.json pins them.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

install: $(VENV)/.installed node_modules/.installed

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

## Watch an Applet work against `make run` (start that first, in another terminal): "when the desk lamp
## switches on, set the hall light to blue". For instant runs, start it as
## IFTTT_REALTIME_URL=http://127.0.0.1:8465/v1/notifications make run
demo: install
	$(PY) manage.py ifttt_applet --url http://127.0.0.1:$(PORT) --user demo --password demo-password \
		--trigger device_switched_on --trigger-field "device=Desk lamp" \
		--action set_light_color --action-field "lights=Hall light" --action-field color=blue \
		--realtime-port 8465 --poll-every 5 --nudge-after 15 --nudge-action switch_off --nudge-action switch_on \
		--hint "Switch the Desk lamp on at http://127.0.0.1:$(PORT)/account/ (demo / demo-password) and watch. Ctrl-C stops."

## Publishing on IFTTT (start `make run` first): the pre-submission review, and every Applet recipe end to end
review: install
	$(PY) manage.py ifttt_review --url http://127.0.0.1:$(PORT) --user demo --password demo-password

recipes: install
	$(PY) manage.py ifttt_applet --url http://127.0.0.1:$(PORT) --user tester --password tester-password \
		--all-recipes --cause --realtime-port -1 --poll-every 1 --stop-after 30

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench-poll: install
	$(PY) bench/poll.py

bench-realtime: install
	$(PY) bench/realtime.py

bench-oauth: install
	$(PY) bench/oauth.py

bench-scripts: install
	$(PY) bench/scripts.py

## Admin pages on 1M events + 1M API-log rows in PostgreSQL (about 5 minutes)
bench-admin: install
	$(PY) bench/admin.py

## What the API log costs a trigger poll (on and off in one run)
bench-api-log: install
	$(PY) bench/api_log.py

## Bytes per row of every growing table on PostgreSQL, and sizes at the design scale (about a minute)
bench-capacity: install
	$(PY) bench/capacity.py

## Refresh docs/consent.png and docs/landing-*.png from the browser tests
screenshots: install
	UPDATE_SCREENSHOTS=1 $(PY) -m pytest accounts/tests/test_browser.py accounts/tests/test_landing_browser.py -q

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache

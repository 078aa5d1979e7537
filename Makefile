# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PORT
CONNECT_PORT ?= 8466

DURATION ?= 30

.PHONY: help soak bench-broker install run test test-postgres lint format demo demo-connection review recipes bench-poll bench-realtime bench-oauth bench-scripts bench-connect-log bench-admin bench-api-log bench-capacity screenshots clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# moment.js, moment-timezone and acorn for the connection-script sandbox, exactly as package-lock.json pins them.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

## Create .venv and install the pinned requirements (Python from PyPI, the script sandbox's from npm)
install: $(VENV)/.installed node_modules/.installed

## List the targets, one line each
help:
	@awk '/^## /{ if (!desc) desc = substr($$0, 4); next } \
	     /^[a-zA-Z][a-zA-Z_-]*:/{ if (desc) { split($$1, t, ":"); printf "  %-16s %s\n", t[1], desc } } \
	     { desc = "" }' $(MAKEFILE_LIST)

## Start everything: migrate, IFTTT's OAuth app, demo data, web + background worker on http://127.0.0.1:$(PORT)
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py setup_ifttt
	$(PY) manage.py seed_demo
	$(PY) manage.py serve --port $(PORT)

## Run the test suite on every core (SQLite unless DATABASE_URL is set; PYTEST_ARGS="-n 0" for one process);
## the hot paths' PostgreSQL statements too, whenever PostgreSQL answers (TEST_POSTGRES_URL to point elsewhere)
TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/iftttsvc
test: install
	$(PY) -m pytest -n auto --dist loadgroup $(PYTEST_ARGS)
	@if [ -z "$$DATABASE_URL" ] && $(PY) -c "import psycopg2; psycopg2.connect('$(TEST_POSTGRES_URL)'.rsplit('/', 1)[0] + '/postgres', connect_timeout=2)" 2>/dev/null; then \
		echo "Hot paths on PostgreSQL ($(TEST_POSTGRES_URL)):"; \
		DATABASE_URL=$(TEST_POSTGRES_URL) $(PY) -m pytest -q -n 0 triggers/tests/test_hot_path.py triggers/tests/test_poll_cost.py; \
	fi

## The suite on PostgreSQL (as CI runs it)
test-postgres: install
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/iftttsvc} $(PY) -m pytest -n auto --dist loadgroup $(PYTEST_ARGS)

## Watch an Applet work against `make run` (start that first): desk lamp on, hall light blue
## In another terminal: "when the desk lamp switches on, set the hall light to blue". For instant runs, start
## `make run` as IFTTT_REALTIME_URL=http://127.0.0.1:8465/v1/notifications make run
demo: install
	$(PY) manage.py ifttt_applet --url http://127.0.0.1:$(PORT) --user demo --password demo-password \
		--trigger device_switched_on --trigger-field "device=Desk lamp" \
		--action set_light_color --action-field "lights=Hall light" --action-field color=blue \
		--realtime-port 8465 --poll-every 5 --nudge-after 15 --nudge-action switch_off --nudge-action switch_on \
		--hint "Switch the Desk lamp on at http://127.0.0.1:$(PORT)/account/ (demo / demo-password) and watch. Ctrl-C stops."

## Watch a connection's script run end to end against `make run` (start it as IFTTT_CONNECT_URL=http://127.0.0.1:8466 make run)
## Its script runs for the Desk lamp's newest switch-on and calls the Connect API, which this stands in for
## (this service's actions and queries run for real).
demo-connection: install
	$(PY) manage.py ifttt_connection --url http://127.0.0.1:$(PORT) --user demo --password demo-password \
		--connection-id demo-connection --script localifttt/demo/connection.js \
		--trigger device_switched_on --trigger-field "device=Desk lamp" --field "set_light_color.lights=Hall light" --field set_light_color.color=blue \
		--connect-port $(CONNECT_PORT)

## The pre-submission review against `make run` (start that first), as on the way to publishing on IFTTT
review: install
	$(PY) manage.py ifttt_review --url http://127.0.0.1:$(PORT) --user demo --password demo-password

## Every Applet recipe end to end against `make run` (start that first)
recipes: install
	$(PY) manage.py ifttt_applet --url http://127.0.0.1:$(PORT) --user tester --password tester-password \
		--all-recipes --cause --realtime-port -1 --poll-every 1 --stop-after 30

## ruff, ruff format --check, mypy and the import layers
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports

## Fix what ruff can and format the code
format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## Trigger polls at 10 thousand and 1 million events, beside a bare endpoint (PostgreSQL)
bench-poll: install
	$(PY) bench/poll.py

## Device events through to Realtime: one reading per request against a bare endpoint, then batches of 250
bench-realtime: install
	$(PY) bench/realtime.py --batch 1 --events 3000 --baseline-events 3000 --latency-batches 0
	$(PY) bench/realtime.py

## The OAuth connection and the account page
bench-oauth: install
	$(PY) bench/oauth.py

## Connection runtime scripts
bench-scripts: install
	$(PY) bench/scripts.py

## What the Connect API log costs an outgoing Connect call (log on vs off, one run)
bench-connect-log: install
	$(PY) bench/connect_log.py

## Admin pages on 1M events + 1M API-log rows in PostgreSQL (about 5 minutes)
bench-admin: install
	$(PY) bench/admin.py

## What the API log costs a trigger poll (on and off in one run)
bench-api-log: install
	$(PY) bench/api_log.py

## Bytes per row of every growing table on PostgreSQL, and sizes at the design scale (about a minute)
bench-capacity: install
	$(PY) bench/capacity.py

## Refresh the pages' screenshots (docs/, and docs/screenshots/ at desktop and phone width) from the browser tests
screenshots: install
	UPDATE_SCREENSHOTS=1 $(PY) -m pytest accounts/tests/test_browser.py accounts/tests/test_landing_browser.py \
		accounts/tests/test_account_browser.py support/tests/test_browser.py -q

## Embedded broker candidates side by side: throughput, lost and duplicated messages
bench-broker: install
	$(PY) bench/broker.py

## Soak the `make run` stack for DURATION minutes (default 30) under steady mixed use; fails on any loss
soak: install
	$(PY) bench/soak.py --minutes $(DURATION)

## Remove local state (var/) and tool caches
clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache

# Cardex — the two commands (make run, make test) and their install step.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: install run serve test lint migrate demo browser clean

install: $(STAMP) browser

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

# Debian's chromium for the browser tests, and a CJK font so Chinese screenshots read;
# installed only when missing and we may (root).
browser:
	@{ command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi "noto.*cjk"; } || { \
	  if [ "$$(id -u)" = "0" ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-noto-cjk) >/dev/null \
	      || echo "chromium could not be installed; browser tests will be skipped"; \
	  else echo "chromium or fonts-noto-cjk missing (install Debian's packages); browser tests will be skipped"; fi; }

migrate: install
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py seed_demo

# The port decides the absolute URLs the sandbox channels are configured with (seed_demo).
run: export SITE_URL ?= http://127.0.0.1:$(PORT)
run: export PORT := $(PORT)
run: demo
	@mkdir -p var
	$(VENV)/bin/honcho -f Procfile start

# The production shape on this machine (config/serve.py, docs/deploy.md): gunicorn, a Celery
# worker per queue, one beat; PostgreSQL and Redis/RabbitMQ required.
serve: install
	$(PY) -m config.serve --port $(PORT)

test: install
	$(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run

clean:
	rm -rf $(VENV) var/*.sqlite3 var/broker

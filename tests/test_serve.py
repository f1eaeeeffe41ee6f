"""`make serve` (config/serve.py): refuses the embedded defaults with one line, and sizes its
processes so their database pools fit PostgreSQL's connections."""

import subprocess
import sys

import pytest

from config.serve import RESERVED_CONNECTIONS, Refused, plan, refusal

PG = "postgres://postgres@127.0.0.1:5432/cardex"
REDIS = "redis://127.0.0.1:6379/0"


def run_serve(**env):
    return subprocess.run(
        [sys.executable, "-m", "config.serve", "--port", "8765"],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_refuses_sqlite_with_one_line():
    result = run_serve(DATABASE_URL="sqlite:///var/db.sqlite3", CELERY_BROKER_URL=REDIS)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and "PostgreSQL" in result.stderr


def test_serve_refuses_the_filesystem_broker_with_one_line():
    result = run_serve(DATABASE_URL=PG, CELERY_BROKER_URL="filesystem://localhost//")
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and "Redis or RabbitMQ" in result.stderr


SECRETS = {"SECRET_KEY": "x" * 50, "CARD_VAULT_KEYS": "k"}


def test_no_broker_at_all_is_refused_too():
    assert "Redis or RabbitMQ" in refusal({"DATABASE_URL": PG, **SECRETS})
    assert refusal({"DATABASE_URL": PG, "CELERY_BROKER_URL": REDIS, **SECRETS}) is None
    amqp = {"DATABASE_URL": PG, "CELERY_BROKER_URL": "amqp://guest@localhost//", **SECRETS}
    assert refusal(amqp) is None


def test_missing_secrets_are_named_in_one_line():
    line = refusal({"DATABASE_URL": PG, "CELERY_BROKER_URL": REDIS})
    assert line == "make serve needs SECRET_KEY and CARD_VAULT_KEYS (README, Configuration)."


def names(layout):
    return [p.name for p in layout.processes]


def test_one_worker_pool_per_queue_and_exactly_one_beat():
    layout = plan(env={}, port=8000, cpus=2, max_connections=100, sandbox=False)
    assert names(layout) == [
        "web",
        "worker-payments",
        "worker-celery",
        "worker-reconciliation",
        "beat",
    ]
    web = layout.processes[0]
    assert "gthread" not in web.argv  # the worker class lives in config/gunicorn.py
    assert web.env["GUNICORN_BIND"] == "127.0.0.1:8000"


def test_web_workers_follow_the_cpus_unless_web_concurrency_says():
    assert plan(env={}, port=8000, cpus=4, max_connections=200, sandbox=False).web_workers == 8
    assert plan(env={}, port=8000, cpus=1, max_connections=200, sandbox=False).web_workers == 2
    told = plan(env={"WEB_CONCURRENCY": "3"}, port=8000, cpus=8, max_connections=200, sandbox=False)
    assert told.web_workers == 3


@pytest.mark.parametrize("limit", [40, 100, 500])
def test_every_pool_together_fits_the_database(limit):
    layout = plan(env={}, port=8000, cpus=2, max_connections=limit, sandbox=True)
    assert layout.connections <= limit - RESERVED_CONNECTIONS
    web = layout.processes[0]
    assert web.env["DB_POOL_MAX_SIZE"] == web.env["WEB_THREADS"] == str(layout.web_threads)


def test_threads_that_would_exhaust_the_database_are_refused():
    with pytest.raises(Refused, match="database connections"):
        plan(
            env={"WEB_CONCURRENCY": "4", "WEB_THREADS": "40"},
            port=8000,
            cpus=2,
            max_connections=100,
            sandbox=False,
        )


def test_with_the_sandbox_the_simulators_run_apart_on_the_next_port():
    layout = plan(env={}, port=8123, cpus=2, max_connections=100, sandbox=True)
    sandbox = next(p for p in layout.processes if p.name == "sandbox")
    assert sandbox.env["GUNICORN_BIND"] == "127.0.0.1:8124"
    assert sandbox.env["ROOT_URLCONF"] == "config.sandbox_urls"
    assert "worker-sandbox" in names(layout)
    moved = plan(env={"SANDBOX_PORT": "9100"}, port=8123, cpus=2, max_connections=100, sandbox=True)
    assert next(p for p in moved.processes if p.name == "sandbox").env["GUNICORN_BIND"] == (
        "127.0.0.1:9100"
    )


def test_a_malformed_size_is_a_clear_error():
    with pytest.raises(Refused, match="WEB_CONCURRENCY must be a whole number"):
        plan(env={"WEB_CONCURRENCY": "many"}, port=8000, cpus=2, max_connections=100, sandbox=False)


def test_a_process_that_keeps_dying_is_restarted_then_stops_everything(tmp_path):
    from config.serve import RESTARTS, Process, supervise

    marks = tmp_path / "starts"
    crash = Process(
        "crashy",
        [sys.executable, "-c", f"open({str(marks)!r}, 'a').write('x'); raise SystemExit(3)"],
    )
    assert supervise([crash], env={}) == 3
    assert marks.read_text() == "x" * RESTARTS  # started again each time, then given up


def test_web_workers_have_few_threads_each_unless_web_threads_says():
    layout = plan(env={}, port=8000, cpus=2, max_connections=100, sandbox=True)
    assert (layout.web_workers, layout.web_threads) == (4, 4)
    told = plan(env={"WEB_THREADS": "8"}, port=8000, cpus=2, max_connections=100, sandbox=False)
    assert told.web_threads == 8
    tight = plan(env={}, port=8000, cpus=2, max_connections=40, sandbox=True)
    assert tight.web_threads * tight.web_workers <= 40 - RESERVED_CONNECTIONS

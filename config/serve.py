"""``make serve``: Cardex in its production shape on one machine (CONTRACT.md, docs/deploy.md).

gunicorn with threaded workers (a payment start waits on a channel's HTTP answer, so a worker
must not be one thread), a Celery worker pool per queue and exactly one beat, DEBUG off,
static files collected. Every process's database pool is sized so the sum fits PostgreSQL's
``max_connections``. With ``PAYMENTS_SANDBOX=true`` it also migrates, loads the demo data and
serves the simulators from a gunicorn of their own on ``SANDBOX_PORT`` (default PORT+1), as
real providers are outside: a channel call never waits for one of Cardex's own web workers.

SIGTERM or Ctrl-C stops every process. One that dies is started again; one that keeps dying
stops everything.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

# Connections kept free for what runs beside the processes started here: migrations,
# `manage.py` commands, psql, the integrity check.
RESERVED_CONNECTIONS = 10
# Threads per web worker: enough that a payment start waiting on a channel's answer leaves
# the worker serving, few enough that the threads do not queue on the worker's GIL.
WEB_THREADS = 4
# A process that dies this often within a minute is broken, not unlucky: stop everything.
RESTARTS = 5


class Refused(Exception):
    """A set-up `make serve` will not run; the message is the one line it prints."""


@dataclass(frozen=True)
class Process:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    connections: int = 0  # the most database connections this process may hold


@dataclass(frozen=True)
class Plan:
    web_workers: int
    web_threads: int
    processes: list[Process]

    @property
    def connections(self) -> int:
        return sum(p.connections for p in self.processes)


def refusal(env: dict[str, str]) -> str | None:
    """The one-line reason this environment is not the production shape, or None."""
    database = env.get("DATABASE_URL", "")
    if not database.startswith(("postgres://", "postgresql://", "pgsql://")):
        return (
            "make serve needs PostgreSQL: set DATABASE_URL=postgres://… (SQLite is for make run)."
        )
    broker = env.get("CELERY_BROKER_URL", "")
    if not broker.startswith(("redis://", "rediss://", "amqp://", "amqps://", "pyamqp://")):
        return (
            "make serve needs Redis or RabbitMQ: set CELERY_BROKER_URL=redis://… or amqp://… "
            "(the embedded broker is for make run)."
        )
    missing = [name for name in ("SECRET_KEY", "CARD_VAULT_KEYS") if not env.get(name)]
    if missing:
        return f"make serve needs {' and '.join(missing)} (README, Configuration)."
    return None


def _int(env: dict[str, str], name: str, default: int) -> int:
    value = env.get(name, "")
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise Refused(f"{name} must be a whole number, not {value!r}.")
    if number < 1:
        raise Refused(f"{name} must be at least 1, not {number}.")
    return number


def plan(*, env: dict[str, str], port: int, cpus: int, max_connections: int, sandbox: bool) -> Plan:
    """Which processes to start and how big each is. Web workers: two per CPU (at least 2)
    unless WEB_CONCURRENCY says, with WEB_THREADS threads each (default 4, fewer when
    PostgreSQL has not the connections left after the Celery pools and the reserve). Under
    whole-purchase load, 2 workers × 16 threads spent the CPUs on each process's GIL: 4 × 4 on
    two CPUs served more purchases with less CPU each (docs/benchmarks.md)."""
    web_workers = _int(env, "WEB_CONCURRENCY", max(2, 2 * cpus))
    pools = {  # queue → threads; the payments queue carries queries and health folds
        "payments": _int(env, "CELERY_PAYMENTS_CONCURRENCY", 4),
        "celery": _int(env, "CELERY_DEFAULT_CONCURRENCY", 2),
        "reconciliation": _int(env, "CELERY_RECONCILIATION_CONCURRENCY", 1),
    }
    if sandbox:
        # the simulators' notices wait on the site's answer, not on CPU: as many threads as
        # a real provider would send notices at once keep delivery from queueing behind them
        pools["sandbox"] = _int(env, "CELERY_SANDBOX_CONCURRENCY", 8)
    # the simulators' gunicorn is shaped like the site's: a few threads in each of two workers
    sandbox_workers = _int(env, "SANDBOX_WORKERS", 2) if sandbox else 0
    sandbox_threads = _int(env, "SANDBOX_THREADS", 4) if sandbox else 0
    others = sum(pools.values()) + 1 + sandbox_workers * sandbox_threads  # + beat
    budget = max_connections - RESERVED_CONNECTIONS - others
    fitted = min(WEB_THREADS, budget // web_workers)
    web_threads = _int(env, "WEB_THREADS", fitted)
    if web_threads < 1 or web_workers * web_threads > budget:
        raise Refused(
            f"{web_workers} web workers × {web_threads} threads need "
            f"{web_workers * web_threads} database connections but PostgreSQL has {budget} "
            f"left (max_connections {max_connections}); lower WEB_CONCURRENCY or WEB_THREADS."
        )

    celery = [str(BIN / "celery"), "-A", "config"]
    gunicorn = [str(BIN / "gunicorn"), "-c", str(ROOT / "config" / "gunicorn.py")]
    processes = [
        Process(
            "web",
            [*gunicorn, "config.wsgi:application"],
            {
                "GUNICORN_BIND": f"127.0.0.1:{port}",
                "WEB_CONCURRENCY": str(web_workers),
                "WEB_THREADS": str(web_threads),
                "DB_POOL_MAX_SIZE": str(web_threads),
            },
            web_workers * web_threads,
        )
    ]
    if sandbox:
        sandbox_port = _int(env, "SANDBOX_PORT", port + 1)
        processes.append(
            Process(
                "sandbox",
                [*gunicorn, "config.wsgi:application"],
                {
                    "GUNICORN_BIND": f"127.0.0.1:{sandbox_port}",
                    "WEB_CONCURRENCY": str(sandbox_workers),
                    "WEB_THREADS": str(sandbox_threads),
                    "DB_POOL_MAX_SIZE": str(sandbox_threads),
                    "ROOT_URLCONF": "config.sandbox_urls",
                },
                sandbox_workers * sandbox_threads,
            )
        )
    for queue, threads in pools.items():
        processes.append(
            Process(
                f"worker-{queue}",
                [
                    *celery,
                    "worker",
                    "-Q",
                    queue,
                    "-n",
                    f"{queue}@%h",
                    "--pool=threads",
                    f"--concurrency={threads}",
                    "--loglevel=INFO",
                    "--without-gossip",
                    "--without-mingle",
                ],
                {"DB_POOL_MAX_SIZE": str(threads)},
                threads,
            )
        )
    processes.append(
        Process(
            "beat",
            [
                *celery,
                "beat",
                "--loglevel=INFO",
                "--scheduler",
                "django_celery_beat.schedulers:DatabaseScheduler",
                "--pidfile",
                str(ROOT / "var" / "celerybeat.pid"),
            ],
            {"DB_POOL_MAX_SIZE": "1"},
            1,
        )
    )
    return Plan(web_workers, web_threads, processes)


def max_connections(database_url: str) -> int:
    """PostgreSQL's own limit, asked of the server (DB_MAX_CONNECTIONS overrides)."""
    import psycopg

    dsn = database_url.replace("pgsql://", "postgresql://", 1)
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        return int(conn.execute("SHOW max_connections").fetchone()[0])


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([str(BIN / "python"), "manage.py", *args], cwd=ROOT, env=env, check=True)


def serve(port: int) -> int:
    env = dict(os.environ)
    reason = refusal(env)
    if reason:
        print(reason, file=sys.stderr)
        return 2
    sandbox = env.get("PAYMENTS_SANDBOX", "").lower() in {"1", "true", "yes", "on"}
    env["DEBUG"] = "false"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("SITE_URL", f"http://127.0.0.1:{port}")
    if sandbox:
        sandbox_port = env.get("SANDBOX_PORT") or str(port + 1)
        env["SANDBOX_URL"] = f"http://127.0.0.1:{sandbox_port}"
        # a load test on the loopback: plain HTTP, no proxy to terminate TLS
        env.setdefault("SECURE_SSL_REDIRECT", "false")
        env.setdefault("SECURE_COOKIES", "false")
    metrics_dir = ROOT / "var" / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    try:
        limit = int(env.get("DB_MAX_CONNECTIONS") or max_connections(env["DATABASE_URL"]))
        layout = plan(
            env=env, port=port, cpus=os.cpu_count() or 1, max_connections=limit, sandbox=sandbox
        )
    except Refused as exc:
        print(exc, file=sys.stderr)
        return 2
    except Exception as exc:  # the database does not answer
        print(f"make serve cannot reach PostgreSQL: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    try:
        _manage(env, "collectstatic", "--noinput", "--verbosity", "0")
        if sandbox:
            _manage(env, "migrate", "--noinput", "--verbosity", "0")
            _manage(env, "seed_demo")
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1
    print(
        f"Cardex on {env['SITE_URL']}: {layout.web_workers} web workers × "
        f"{layout.web_threads} threads, {len(layout.processes)} processes, at most "
        f"{layout.connections} of {limit} database connections"
        + (f"; simulators on {env['SANDBOX_URL']}" if sandbox else ""),
        flush=True,
    )
    return supervise(layout.processes, env)


def supervise(processes: list[Process], env: dict[str, str]) -> int:
    """Run every process; a process that dies is started again (a killed Celery worker's
    unacknowledged tasks then come back to it from the broker), unless it dies RESTARTS times
    within a minute, which stops everything. SIGTERM/SIGINT stops everything."""
    children: dict[str, subprocess.Popen] = {}
    deaths: dict[str, list[float]] = {p.name: [] for p in processes}
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    def start(proc: Process) -> None:
        children[proc.name] = subprocess.Popen(proc.argv, cwd=ROOT, env={**env, **proc.env})

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    for proc in processes:
        start(proc)
    status = 0
    while not stopping:
        for proc in processes:
            code = children[proc.name].poll()
            if code is None:
                continue
            now = time.monotonic()
            recent = [t for t in deaths[proc.name] if now - t < 60] + [now]
            deaths[proc.name] = recent
            if len(recent) >= RESTARTS:
                print(
                    f"{proc.name} exited with {code} {len(recent)} times in a minute; "
                    "stopping everything",
                    file=sys.stderr,
                    flush=True,
                )
                status, stopping = code or 1, True
                break
            print(f"{proc.name} exited with {code}; starting it again", file=sys.stderr, flush=True)
            start(proc)
        time.sleep(0.5)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    for sig, handler in previous.items():
        signal.signal(sig, handler)
    return status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000))
    sys.exit(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()

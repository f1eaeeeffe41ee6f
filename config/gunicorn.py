"""gunicorn settings for `make serve` (config/serve.py passes the sizes in the environment).

Threaded workers: a payment start waits on a channel's HTTP answer, and a thread waiting on
the network leaves the worker's other threads serving. Each worker's database pool has as
many connections as it has threads (DB_POOL_MAX_SIZE), so no thread waits for a connection.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "8"))
# A request slower than this is killed with its worker: above the channel HTTP timeout.
timeout = 60
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then so a slow leak never grows without bound.
max_requests = 20000
max_requests_jitter = 2000
# Request lines are logged by the application as JSON, with their request id.
accesslog = None
errorlog = "-"
# Two gunicorns run side by side (site and simulators); neither needs the control socket,
# whose default path they would share.
control_socket_disable = True
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Each worker loads the application itself: nothing opened before the fork (a database pool,
# an HTTP client) is ever shared between processes.
preload_app = False


def child_exit(server, worker):
    """A dead worker's counters stay in the Prometheus files; mark its gauges dead."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

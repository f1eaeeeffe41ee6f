"""The Celery app: tasks autodiscovered from every installed app, settings under CELERY_*.

A task carries the id of the request that queued it (a `request_id` message header set on
publish, restored in the worker), so its log lines join the request's; each run is counted
for /metrics.
"""

import os
import time

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("cardex")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


_started: dict[str, float] = {}
_tokens: dict[str, object] = {}


@signals.before_task_publish.connect
def stamp_request_id(headers=None, **kwargs):
    from config.logging import request_id

    if headers is not None and request_id.get():
        headers.setdefault("request_id", request_id.get())


@signals.task_prerun.connect
def restore_request_id(task_id=None, task=None, **kwargs):
    from config.logging import request_id

    offered = getattr(task.request, "request_id", None) if task is not None else None
    _tokens[task_id] = request_id.set(offered or request_id.get() or f"task-{task_id}")
    _started[task_id] = time.perf_counter()


@signals.task_postrun.connect
def count_task_run(task_id=None, task=None, state=None, **kwargs):
    from config import metrics
    from config.logging import request_id

    started = _started.pop(task_id, None)
    name = getattr(task, "name", "unknown")
    outcome = {"SUCCESS": "succeeded", "FAILURE": "failed", "RETRY": "retried"}.get(
        state or "", (state or "unknown").lower()
    )
    metrics.TASK_RUNS.labels(name, outcome).inc()
    if started is not None:
        metrics.TASK_LATENCY.labels(name).observe(time.perf_counter() - started)
    token = _tokens.pop(task_id, None)
    if token is not None:
        request_id.reset(token)

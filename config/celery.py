"""The Celery app: tasks autodiscovered from every installed app, settings under CELERY_*."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("cardex")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

"""Staff actions and sensitive views in the audit trail (django-auditlog's LogEntry).

Model changes are recorded by auditlog itself (settings.AUDITLOG_INCLUDE_TRACKING_MODELS).
What a diff cannot show is recorded here as an "access" entry: an admin action run on a
selection, a secret revealed, an export downloaded, an approval given. Every app may call
``record``; it imports nothing of the project.
"""

from __future__ import annotations

from collections.abc import Iterable

from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils.encoding import smart_str

MAX_OBJECTS_PER_EVENT = 500


def record(
    *,
    actor,
    event: str,
    obj: models.Model | None = None,
    model=None,
    detail: str = "",
    remote_addr: str | None = None,
    **data,
) -> LogEntry:
    """One audit row: ``actor`` did ``event`` (e.g. ``export``, ``reveal``, ``approve``) on
    ``obj`` (or on the ``model`` as a whole, for a list export)."""
    target = obj if obj is not None else model
    content_type = ContentType.objects.get_for_model(target)
    pk = smart_str(obj.pk) if obj is not None else ""
    return LogEntry.objects.create(
        content_type=content_type,
        object_pk=pk,
        object_id=obj.pk if obj is not None and isinstance(obj.pk, int) else None,
        object_repr=smart_str(obj)[:200] if obj is not None else smart_str(content_type),
        action=LogEntry.Action.ACCESS,
        changes_text=detail[:1000],
        actor=actor if getattr(actor, "pk", None) else None,
        remote_addr=remote_addr,
        additional_data={"event": event, **{k: smart_str(v) for k, v in data.items()}},
    )


def record_each(
    *,
    actor,
    event: str,
    objects: Iterable[models.Model],
    detail: str = "",
    remote_addr: str | None = None,
    **data,
) -> int:
    """One row per object of a selection (an admin action), written in one statement."""
    rows = []
    extra = {"event": event, **{k: smart_str(v) for k, v in data.items()}}
    for obj in list(objects)[:MAX_OBJECTS_PER_EVENT]:
        rows.append(
            LogEntry(
                content_type=ContentType.objects.get_for_model(obj),
                object_pk=smart_str(obj.pk),
                object_id=obj.pk if isinstance(obj.pk, int) else None,
                object_repr=smart_str(obj)[:200],
                action=LogEntry.Action.ACCESS,
                changes_text=detail[:1000],
                actor=actor if getattr(actor, "pk", None) else None,
                remote_addr=remote_addr,
                additional_data=extra,
            )
        )
    LogEntry.objects.bulk_create(rows)
    return len(rows)


def client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None

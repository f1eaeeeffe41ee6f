"""A reconciliation run's progress, kept where admin and the terminal can see it while the
run's own transaction is still open, and one run of a file at a time."""

from __future__ import annotations

import datetime as dt
import time

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from reconciliation.models import ReconcileRun, SettlementFile

#: a run that never got to read a line and has written nothing for this long is dead
STALE_RUN = dt.timedelta(minutes=2)


def runs_of_file_serialised(file: SettlementFile, run: ReconcileRun) -> None:
    """One run of a file at a time: the file's row is locked until this run commits or rolls
    back, and a run takes it before it reads a line. So once we hold it, an earlier run of
    the file still marked running that has read anything has ended — killed without
    finishing, its transaction rolled back — and is marked interrupted; so is one that never
    read a line and has been silent for :data:`STALE_RUN`. (A run that finishes at this very
    moment sets its own status after us, so the mark cannot stick on a run that worked.)"""
    SettlementFile.objects.select_for_update().filter(pk=file.pk).first()
    silent_since = run.started_at - STALE_RUN
    ReconcileRun.objects.filter(
        file_id=file.pk, status=ReconcileRun.Status.RUNNING, pk__lt=run.pk
    ).filter(Q(bytes_read__gt=0) | ~Q(stage="reading") | Q(updated_at__lt=silent_since)).update(
        status=ReconcileRun.Status.FAILED,
        error=_("interrupted: the run stopped without finishing (nothing of it was kept)"),
        finished_at=timezone.now(),
    )


class RunRecorder:
    """Keeps a :class:`ReconcileRun` up to date while a file is reconciled. Outside any
    transaction on PostgreSQL it writes through a connection of its own, so the progress is
    seen before the run commits and the run's end survives its rollback."""

    EVERY = 0.5  # seconds between writes

    def __init__(self, file: SettlementFile, *, callback=None):
        self.callback = callback
        self._side = None
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            self._side = connections.create_connection(DEFAULT_DB_ALIAS)
        now = timezone.now()
        self.run = ReconcileRun(
            file_id=file.pk,
            size=file.size,
            started_at=now,
            updated_at=now,
            stage="reading",
        )
        self._written = 0.0
        self._save(insert=True)

    def _save(self, *, insert: bool = False) -> None:
        run = self.run
        run.updated_at = timezone.now()
        if insert:  # before the run's transaction: committed at once when nothing encloses it
            run.save(force_insert=True)
        elif self._side is None:
            ReconcileRun.objects.filter(pk=run.pk).update(**self._values())
        else:
            values = self._values()
            table = self._side.ops.quote_name(ReconcileRun._meta.db_table)
            sets = ", ".join(f"{column} = %s" for column in values)
            with self._side.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {table} SET {sets} WHERE id = %s",  # noqa: S608 -- model metadata
                    [*values.values(), run.pk],
                )

    def _values(self) -> dict:
        run = self.run
        return {
            "status": run.status,
            "stage": run.stage,
            "lines_read": run.lines_read,
            "bytes_read": run.bytes_read,
            "matched": run.matched,
            "error": run.error,
            "updated_at": run.updated_at,
            "finished_at": run.finished_at,
        }

    def read(self, lines: int, bytes_read: int) -> None:
        self.run.lines_read, self.run.bytes_read = lines, bytes_read
        now = time.monotonic()
        if now - self._written >= self.EVERY:
            self._written = now
            self._save()
        if self.callback is not None:
            self.callback(self.run)

    def stage(self, name: str) -> None:
        self.run.stage = name
        self._save()
        if self.callback is not None:
            self.callback(self.run)

    def finish(self, *, status: str, matched: int = 0, error: str = "") -> None:
        run = self.run
        run.status, run.matched, run.error, run.finished_at = status, matched, error, timezone.now()
        run.stage = "" if status == ReconcileRun.Status.DONE else run.stage
        if status == ReconcileRun.Status.DONE:
            run.bytes_read = run.size
        try:
            self._save()  # the row was written before the run's transaction: it stays
        finally:
            if self._side is not None:
                self._side.close()
                self._side = None
        if self.callback is not None:
            self.callback(run)

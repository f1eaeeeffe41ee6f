"""Risk's writes on the hot path, hand-written: a decision runs at every payment and log-in,
and the ORM's compile of an insert costs more than the statement (bench/risk_bench.py)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

from django.db import connection, models


def insert_returning_id(
    model: type[models.Model], row: dict[str, Any], *, before: tuple[str, list] | None = None
) -> int:
    """One ``INSERT … RETURNING id`` of ``row`` (field name → value) into ``model``'s table;
    JSON fields are dumped as the ORM dumps them, timestamps adapted for the database. On
    PostgreSQL ``before`` — another write, as (sql, params) — rides in the same statement as
    a data-modifying ``WITH`` (one round trip); elsewhere it runs just before."""
    fields = {field.name: field for field in model._meta.concrete_fields}
    json_cast = "::jsonb" if connection.vendor == "postgresql" else ""
    columns, values, params = [], [], []
    for name, value in row.items():
        field = fields[name]
        columns.append(connection.ops.quote_name(field.column))
        if isinstance(field, models.JSONField):
            values.append(f"%s{json_cast}")
            params.append(json.dumps(value))
            continue
        values.append("%s")
        if isinstance(value, dt.datetime):
            value = connection.ops.adapt_datetimefield_value(value)
        params.append(value)
    sql = (
        f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({', '.join(columns)})"  # noqa: S608 -- model metadata and placeholders
        f" VALUES ({', '.join(values)}) RETURNING id"
    )
    with connection.cursor() as cursor:
        if before and connection.vendor == "postgresql":
            sql, params = f"WITH before_ AS ({before[0]}) {sql}", [*before[1], *params]
        elif before:
            cursor.execute(*before)
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


@contextlib.contextmanager
def pipeline() -> Iterator[None]:
    """PostgreSQL's pipeline mode: the statements executed inside go out without waiting for
    each other's answers (and a transaction's BEGIN with the first of them), so independent
    reads cost one round trip; a statement's results are fetched when asked for. Elsewhere
    the statements simply run one after the other."""
    if connection.vendor != "postgresql":
        yield
        return
    connection.ensure_connection()
    with connection.connection.pipeline():
        yield

"""Parsed settlement lines into the database in constant memory: PostgreSQL ``COPY`` (psycopg 3),
batched inserts elsewhere. Nothing here holds more than one batch of lines."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import islice

from django.db import connection

from payments.channels.base import SettlementLine as ParsedLine
from reconciliation.models import SettlementLine

BATCH = 5000
COLUMNS = (
    "file_id",
    "line_no",
    "kind",
    "out_trade_no",
    "channel_trade_no",
    "refund_no",
    "amount",
    "fee",
    "currency",
    "status",
    "occurred_at",
)


def _row(file_id: int, currency: str, line: ParsedLine) -> tuple:
    return (
        file_id,
        line.line_no,
        line.kind,
        line.out_trade_no[:64],
        (line.channel_trade_no or "")[:64],
        (line.refund_no or "")[:64] if line.kind == "refund" else "",
        line.amount,
        line.fee,
        line.currency or currency,
        (line.status or "")[:20],
        line.occurred_at,
    )


def lines_load(
    *,
    file_id: int,
    currency: str,
    lines: Iterable[ParsedLine],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write every parsed line of one file as a ``SettlementLine`` row; returns how many.
    ``progress(n)`` is called with the running count every batch."""
    rows = (_row(file_id, currency, line) for line in lines)
    if connection.vendor == "postgresql":
        return _copy(rows, progress)
    return _insert(rows, progress)


def _copy(rows, progress) -> int:
    table = connection.ops.quote_name(SettlementLine._meta.db_table)
    sql = f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN"
    count = 0
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
            if progress is not None and count % BATCH == 0:
                progress(count)
    if progress is not None:
        progress(count)
    return count


def _insert(rows, progress) -> int:
    count = 0
    while batch := list(islice(rows, BATCH)):
        SettlementLine.objects.bulk_create(
            [SettlementLine(**dict(zip(COLUMNS, row, strict=True))) for row in batch],
            batch_size=500,
        )
        count += len(batch)
        if progress is not None:
            progress(count)
    if progress is not None and count == 0:
        progress(0)
    return count

"""Classify a loaded settlement file against our attempts and refunds in the database: three
``INSERT … SELECT`` statements write every discrepancy, whatever the size of the file; no line
passes through Python. Plain SQL that PostgreSQL and SQLite both run.

An attempt charged in a foreign currency is matched on what the channel reports: its
foreign amount, currency and fee (``charge_amount``, ``charge_currency``, ``charge_fee``), and
its refunds on their foreign amounts; the CNY side stays the journal's."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.utils import timezone

from payments.models import Attempt, Refund
from payments.states import AttemptStatus, RefundStatus
from reconciliation.models import Discrepancy, SettlementLine

INSERT_COLUMNS = (
    "file_id, kind, line_id, attempt_id, refund_id, expected, actual, note, status, resolution, "
    "created_at"
)


def _tables() -> dict[str, str]:
    q = connection.ops.quote_name
    return {
        "lines": q(SettlementLine._meta.db_table),
        "found": q(Discrepancy._meta.db_table),
        "attempts": q(Attempt._meta.db_table),
        "refunds": q(Refund._meta.db_table),
    }


#: Every line of the file that is not matched, with why. The first occurrence of a key is
#: judged normally; later ones are duplicates. Refund lines without a refund number match none.
LINES_SQL = """
INSERT INTO {found} ({columns})
SELECT %(file)s, x.kind, x.line_id, x.attempt_id, x.refund_id, x.expected, x.actual, x.note,
       'open', '', %(now)s
FROM (
  SELECT l.id AS line_id,
    CASE
      WHEN d.rn > 1 THEN 'duplicate'
      WHEN l.kind = 'payment' THEN CASE
        WHEN a.id IS NULL THEN 'missing_ours'
        WHEN COALESCE(a.charge_amount, a.amount) <> l.amount
             OR (a.charge_currency <> '' AND l.currency <> a.charge_currency)
        THEN 'amount_mismatch'
        WHEN a.status <> %(succeeded)s THEN 'status_mismatch'
        WHEN ROUND(COALESCE(a.charge_fee, a.fee), 2) <> ROUND(l.fee, 2) THEN 'fee_mismatch'
      END
      ELSE CASE
        WHEN r.id IS NULL THEN 'missing_ours'
        WHEN COALESCE(r.charge_amount, r.amount) <> l.amount THEN 'amount_mismatch'
        WHEN r.status <> %(refund_succeeded)s THEN 'status_mismatch'
      END
    END AS kind,
    CASE WHEN d.rn = 1 AND r.id IS NOT NULL THEN r.attempt_id ELSE a.id END AS attempt_id,
    CASE WHEN d.rn = 1 THEN r.id END AS refund_id,
    CASE
      WHEN d.rn > 1 THEN NULL
      WHEN l.kind = 'payment' AND a.fee IS NOT NULL
           AND COALESCE(a.charge_amount, a.amount) = l.amount
           AND a.status = %(succeeded)s THEN COALESCE(a.charge_fee, a.fee)
      WHEN l.kind = 'payment' THEN COALESCE(a.charge_amount, a.amount)
      ELSE COALESCE(r.charge_amount, r.amount)
    END AS expected,
    CASE
      WHEN d.rn = 1 AND l.kind = 'payment' AND COALESCE(a.charge_amount, a.amount) = l.amount
           AND a.status = %(succeeded)s
      THEN l.fee
      ELSE l.amount
    END AS actual,
    CASE
      WHEN d.rn > 1 THEN d.k || ' appears again in the file'
      WHEN l.kind = 'payment' AND a.id IS NULL
      THEN 'payment ' || l.out_trade_no || ' is not ours (dropped order?)'
      WHEN l.kind = 'payment' AND (COALESCE(a.charge_amount, a.amount) <> l.amount
           OR (a.charge_currency <> '' AND l.currency <> a.charge_currency))
      THEN 'payment ' || l.out_trade_no
      WHEN l.kind = 'payment' AND a.status <> %(succeeded)s
      THEN 'the channel says paid, our attempt is ' || a.status
      WHEN l.kind = 'payment' THEN 'fee of ' || l.out_trade_no
      WHEN r.id IS NULL THEN 'refund ' || CASE WHEN l.refund_no = '' THEN '?' ELSE l.refund_no END
                             || ' of ' || l.out_trade_no || ' is not ours'
      WHEN COALESCE(r.charge_amount, r.amount) <> l.amount THEN 'refund ' || l.refund_no
      ELSE 'the channel says refunded, our refund is ' || r.status
    END AS note
  FROM {lines} l
  JOIN (
    SELECT id, k, ROW_NUMBER() OVER (PARTITION BY kind, k ORDER BY line_no, id) AS rn
    FROM (
      SELECT id, kind, line_no,
        CASE WHEN kind = 'payment' THEN out_trade_no
             WHEN refund_no <> '' THEN refund_no
             ELSE 'line:' || CAST(id AS VARCHAR(20)) END AS k
      FROM {lines} WHERE file_id = %(file)s
    ) keyed
  ) d ON d.id = l.id
  LEFT JOIN {attempts} a ON a.out_trade_no = l.out_trade_no AND a.account_id = %(account)s
  LEFT JOIN (
    SELECT rr.id, rr.refund_no, rr.amount, rr.charge_amount, rr.status, rr.attempt_id
    FROM {refunds} rr JOIN {attempts} ra ON ra.id = rr.attempt_id
    WHERE ra.account_id = %(account)s
  ) r ON l.kind = 'refund' AND l.refund_no <> '' AND r.refund_no = l.refund_no
  WHERE l.file_id = %(file)s
) x
WHERE x.kind IS NOT NULL
"""

#: Our succeeded attempts of the day that the file has no payment line for.
MISSING_PAYMENTS_SQL = """
INSERT INTO {found} ({columns})
SELECT %(file)s, 'missing_channel', NULL, a.id, NULL, COALESCE(a.charge_amount, a.amount), NULL,
       a.out_trade_no || ' succeeded with us but is not in the file', 'open', '', %(now)s
FROM {attempts} a
WHERE a.account_id = %(account)s AND a.status = %(succeeded)s
  AND a.succeeded_at >= %(start)s AND a.succeeded_at < %(end)s
  AND NOT EXISTS (
    SELECT 1 FROM {lines} l
    WHERE l.file_id = %(file)s AND l.kind = 'payment' AND l.out_trade_no = a.out_trade_no
  )
"""

#: Our refunds that succeeded that day and that the file has no refund line for.
MISSING_REFUNDS_SQL = """
INSERT INTO {found} ({columns})
SELECT %(file)s, 'refund_missing_channel', NULL, r.attempt_id, r.id,
       COALESCE(r.charge_amount, r.amount), NULL,
       'refund ' || r.refund_no || ' of ' || a.out_trade_no
       || ' succeeded with us but is not in the file', 'open', '', %(now)s
FROM {refunds} r JOIN {attempts} a ON a.id = r.attempt_id
WHERE a.account_id = %(account)s AND r.status = %(refund_succeeded)s
  AND r.settled_at >= %(start)s AND r.settled_at < %(end)s
  AND NOT EXISTS (
    SELECT 1 FROM {lines} l
    WHERE l.file_id = %(file)s AND l.kind = 'refund' AND l.refund_no = r.refund_no
  )
"""


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The local day as an aware half-open interval."""
    start = dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_current_timezone())
    return start, start + dt.timedelta(days=1)


def classify(*, file_id: int, account_id: int, day: dt.date) -> None:
    """Write the file's discrepancies (the file's earlier ones must be gone already)."""
    start, end = day_bounds(day)
    adapt = connection.ops.adapt_datetimefield_value
    params = {
        "file": file_id,
        "account": account_id,
        "now": adapt(timezone.now()),
        "start": adapt(start),
        "end": adapt(end),
        "succeeded": AttemptStatus.SUCCEEDED.value,
        "refund_succeeded": RefundStatus.SUCCEEDED.value,
    }
    names = {**_tables(), "columns": INSERT_COLUMNS}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The planner must know the file's lines are there before it joins them.
            cursor.execute(f"ANALYZE {names['lines']}")
        for sql in (LINES_SQL, MISSING_PAYMENTS_SQL, MISSING_REFUNDS_SQL):
            cursor.execute(sql.format(**names), params)


def file_clear(*, file_ids) -> None:
    """Delete the loaded lines and discrepancies of files, set-based (no ORM cascade walk,
    which would read every line into memory)."""
    ids = [int(i) for i in file_ids]
    if not ids:
        return
    names = _tables()
    marks = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        for table in (names["found"], names["lines"]):
            sql = f"DELETE FROM {table} WHERE file_id IN ({marks})"  # noqa: S608 -- model metadata
            cursor.execute(sql, ids)

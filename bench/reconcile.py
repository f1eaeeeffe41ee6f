#!/usr/bin/env python
"""Reconciling a WeChat Pay bill of N lines on PostgreSQL, against a floor measured in the same
run for the same file.

Seeds N payments (and a tenth as many refunds) in bulk into a scratch database, writes the
channel's bill with a known sprinkle of every discrepancy kind, runs the real path
(``reconcile_file``: store in storage, stream-parse, COPY, classify in SQL, statement,
clearing) in a child process, and checks its counts. The floor, in another child process, is a
bare parse of the same file, a ``COPY`` of the same rows into a plain table and one join
against the attempts. Prints seconds, peak RSS of each child and the ratio.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cardex \\
        .venv/bin/python bench/reconcile.py --lines 1000000 --case matched
    .venv/bin/python bench/reconcile.py --lines 1000000 --case unknown   # no order is ours

Targets at 1,000,000 lines (docs/benchmarks.md, "Reconciliation"): matched under 3x the floor
and 250 MB peak RSS; unknown orders under 5x the floor and 400 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from decimal import Decimal
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
warnings.filterwarnings("ignore", message="CARD_VAULT_KEYS is not set")
os.environ.update(
    DEBUG="false",
    CONN_MAX_AGE="60",
    LOG_LEVEL="ERROR",
    CELERY_BROKER_URL="memory://",
    SECRET_KEY=os.environ.get("SECRET_KEY") or "bench-" + "x7Qp2" * 12,
    CARD_VAULT_KEYS=os.environ.get("CARD_VAULT_KEYS")
    or "YmVuY2gtb25seS1jYXJkLXZhdWx0LWtleS0xMjM0NTY=",
)

from bench.benchdb import drop_database, use_scratch_database  # noqa: E402
from bench.wechat_bill import BillRow, write_bill  # noqa: E402

DB_NAME = "cardex_bench_reconcile"
MCHID = "1900000109"
DAY = dt.date(2026, 11, 24)
KINDS = (
    "missing_ours",
    "missing_channel",
    "amount_mismatch",
    "fee_mismatch",
    "status_mismatch",
    "duplicate",
    "refund_missing_channel",
)


# ---------------------------------------------------------------------------------------------
# Seeding (parent)


def copy_rows(model, template: dict, rows) -> int:
    """COPY rows into the model's table: every column as in an instance built from
    ``template``, overridden by each row's dict (attribute names, raw values)."""
    from django.db import connection

    fields = model._meta.concrete_fields
    base = model(**template)
    values = [f.get_db_prep_save(f.pre_save(base, True), connection) for f in fields]
    position = {f.attname: n for n, f in enumerate(fields)}
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    count = 0
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        for row in rows:
            line = values.copy()
            for name, value in row.items():
                line[position[name]] = value
            copy.write_row(line)
            count += 1
    return count


class Plan:
    """Which line is which: ``k`` of each discrepancy kind among ``lines`` lines."""

    def __init__(self, lines: int, case: str):
        self.case = case
        self.k = max(1, lines // 10_000)
        self.refunds = 0 if case == "unknown" else lines // 10
        self.payments = lines - self.refunds
        k = self.k
        if case == "unknown":
            self.expected = dict.fromkeys(KINDS, 0) | {"missing_ours": lines}
            self.matched = 0
            return
        # payment lines: the last k are unknown, k before them repeat an earlier line
        self.seeded = self.payments - 2 * k
        self.expected = {
            "missing_ours": 2 * k,  # k payments + k refunds not ours
            "missing_channel": k,
            "amount_mismatch": k,
            "fee_mismatch": k,
            "status_mismatch": 2 * k,
            "duplicate": k,
            "refund_missing_channel": k,
        }
        self.matched = lines - (2 * k + 4 * k + k)  # lines not matched: all line-based kinds

    def amount(self, i: int) -> Decimal:
        return Decimal(10 + i % 500)

    def fee(self, i: int) -> Decimal:
        return (self.amount(i) * Decimal("0.006")).quantize(Decimal("0.01"))

    def kind_of(self, i: int) -> str:
        """What seeded attempt ``i`` is for: the first k of each kind, then plain matches."""
        k = self.k
        for n, kind in enumerate(("amount", "status", "fee")):
            if n * k <= i < (n + 1) * k:
                return kind
        return "ok"


def seed(plan: Plan) -> None:
    from django.contrib.auth import get_user_model
    from django.core.management.color import no_style
    from django.db import connection
    from django.utils import timezone

    from payments.models import Attempt, ChannelAccount, Payment, Refund

    account = ChannelAccount.objects.create(
        code="wechatpay",
        name="WeChat Pay",
        backend="wechatpay",
        merchant_id=MCHID,
        base_url="http://127.0.0.1/sandbox/wechatpay/",
        settlement_days=1,
    )
    if plan.case == "unknown":
        return
    buyer = get_user_model().objects.create_user("bench-buyer", password="x")
    noon = timezone.make_aware(dt.datetime.combine(DAY, dt.time(12)))
    total = plan.seeded + plan.k  # + k succeeded attempts that the bill lacks

    def payments():
        for i in range(total):
            yield {
                "id": i + 1,
                "public_id": uuid.UUID(int=i + 1),
                "reference": f"bench:{i}",
                "amount": plan.amount(i),
            }

    def attempts():
        for i in range(total):
            status = "pending" if plan.kind_of(i) == "status" else "succeeded"
            yield {
                "id": i + 1,
                "payment_id": i + 1,
                "out_trade_no": f"B{i:011d}",
                "amount": plan.amount(i),
                "fee": plan.fee(i),
                "status": status,
                "succeeded_at": noon if status == "succeeded" else None,
            }

    def refunds():
        # refund j of attempt 3k + j (plain matches): the first k pending, the last k not in
        # the bill
        for j in range(plan.refunds):
            status = "pending" if j < plan.k else "succeeded"
            i = 3 * plan.k + j
            yield {
                "id": j + 1,
                "payment_id": i + 1,
                "attempt_id": i + 1,
                "refund_no": f"R{j:011d}",
                "status": status,
                "settled_at": noon if status == "succeeded" else None,
            }

    copy_rows(
        Payment,
        {
            "buyer_id": buyer.pk,
            "method": "wechatpay",
            "amount": 1,
            "status": "succeeded",
            "reference": "x",
        },
        payments(),
    )
    copy_rows(
        Attempt,
        {
            "payment_id": 1,
            "account_id": account.pk,
            "method": "wechatpay",
            "amount": 1,
            "out_trade_no": "x",
        },
        attempts(),
    )
    copy_rows(
        Refund,
        {
            "payment_id": 1,
            "attempt_id": 1,
            "amount": Decimal("1.00"),
            "currency": "CNY",
            "refund_no": "x",
        },
        refunds(),
    )
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), [Payment, Attempt, Refund]):
            cursor.execute(sql)
        cursor.execute("ANALYZE")


def bill_rows(plan: Plan):
    """The bill's lines in the plan's order."""
    noon = dt.datetime.combine(DAY, dt.time(12))
    if plan.case == "unknown":
        for i in range(plan.payments):
            yield BillRow("payment", f"U{i:011d}", Decimal(10 + i % 500), Decimal("0.06"), noon)
        return
    k = plan.k
    for i in range(plan.seeded):
        kind = plan.kind_of(i)
        amount = plan.amount(i) + (1 if kind == "amount" else 0)
        fee = plan.fee(i) + (Decimal("0.01") if kind == "fee" else 0)
        yield BillRow("payment", f"B{i:011d}", amount, fee, noon)
    for i in range(3 * k, 4 * k):  # a second line of k plain matches
        yield BillRow("payment", f"B{i:011d}", plan.amount(i), plan.fee(i), noon)
    for i in range(k):
        yield BillRow("payment", f"X{i:011d}", Decimal("9.00"), Decimal("0.05"), noon)
    # refunds: 0..k-1 pending with us, k..refunds-k-1 plain, then k not ours;
    # ours refunds-k..refunds-1 succeeded but not in the bill
    for j in range(plan.refunds - k):
        i = 3 * k + j
        yield BillRow(
            "refund", f"B{i:011d}", Decimal("1.00"), Decimal("0"), noon, refund_no=f"R{j:011d}"
        )
    for j in range(k):
        yield BillRow(
            "refund", f"X{j:011d}", Decimal("1.00"), Decimal("0"), noon, refund_no=f"RX{j:010d}"
        )


# ---------------------------------------------------------------------------------------------
# Children: the floor and the real path, each measured on its own


def child_floor(path: str) -> dict:
    import django

    django.setup()
    from django.db import connection

    from payments.channels.registry import backend_class
    from reconciliation.loading import _row

    started = time.perf_counter()
    with open(path, "rb") as stream, connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE floor_lines (file_id int, line_no int, kind varchar(10), "
            "out_trade_no varchar(64), channel_trade_no varchar(64), refund_no varchar(64), "
            "amount numeric(16,2), fee numeric(18,5), currency varchar(3), status varchar(20), "
            "occurred_at timestamptz)"
        )
        parsed = backend_class("wechatpay").open_settlement(stream, merchant_id=MCHID)
        with cursor.cursor.copy("COPY floor_lines FROM STDIN") as copy:
            for line in parsed.lines():
                copy.write_row(_row(1, "CNY", line))
        cursor.execute(
            "SELECT count(*) FROM floor_lines f LEFT JOIN payments_attempt a "
            "ON a.out_trade_no = f.out_trade_no WHERE a.id IS NULL"
        )
        unmatched = cursor.fetchone()[0]
    return {"seconds": time.perf_counter() - started, "unmatched": unmatched}


def child_real(path: str) -> dict:
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    # A re-run of the same file (--kill-halfway) finds the raw file its first run stored.
    shared = os.environ.get("BENCH_MEDIA_ROOT")
    with tempfile.TemporaryDirectory() as media:
        settings.MEDIA_ROOT = shared or media
        out = io.StringIO()
        started = time.perf_counter()
        call_command(
            "reconcile_file",
            "--channel",
            "wechatpay",
            "--date",
            DAY.isoformat(),
            path,
            "--json",
            stdout=out,
        )
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "result": json.loads(out.getvalue())}


def measure(phase: str, path: str) -> tuple[dict, float]:
    """Run a child; its JSON answer and its peak RSS in MB."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", phase, path],
        stdout=subprocess.PIPE,
        env=os.environ,
    )
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        sys.exit(f"{phase} failed with {process.returncode}")
    return json.loads(output), usage.ru_maxrss / 1024


def day_state() -> dict:
    """What the day's reconciliation holds in the database: the statement, its discrepancies
    by kind, the lines loaded and the runs by status."""
    from django.db.models import Count

    from reconciliation.models import Discrepancy, ReconcileRun, SettlementLine, Statement

    statement = (
        Statement.objects.filter(day=DAY)
        .values("count", "gross", "refunded", "fees", "net", "matched", "discrepancies")
        .first()
    )
    kinds = Discrepancy.objects.values("kind").annotate(n=Count("pk")).order_by("kind")
    runs = ReconcileRun.objects.values("status").annotate(n=Count("pk")).order_by("status")
    return {
        "statement": statement,
        "statements": Statement.objects.filter(day=DAY).count(),
        "discrepancies": {row["kind"]: row["n"] for row in kinds},
        "lines": SettlementLine.objects.count(),
        "runs": {row["status"]: row["n"] for row in runs},
    }


def integrity() -> str:
    """``integrity_check``'s report. The bench seeds rows in bulk without their journal
    entries, so its checks are compared before and after rather than required green."""
    from django.core.management import call_command

    out = io.StringIO()
    with contextlib.suppress(SystemExit):  # a red check exits; its report is what we want
        call_command("integrity_check", stdout=out)
    return out.getvalue().strip()


def kill_halfway(plan: Plan, path: str, written: int) -> bool:
    """The day reconciled once; a re-run SIGKILLed when it has read half the file must leave
    the first result exactly as it was; a last run replaces it with the same counts, and the
    books stay balanced (``integrity_check``)."""
    import signal

    from django.db import connection

    from reconciliation.models import ReconcileRun

    os.environ["BENCH_MEDIA_ROOT"] = str(Path(path).parent / "media")
    first, _ = measure("real", path)
    before = day_state()
    books_before = integrity()
    print(f"1. reconciled once in {first['seconds']:.1f} s: {before}")
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", "real", path],
        stdout=subprocess.DEVNULL,
        env=os.environ,
    )
    started, killed_at = time.perf_counter(), None
    while process.poll() is None:
        run = ReconcileRun.objects.filter(status="running").order_by("-id").first()
        if run and run.size and run.bytes_read * 2 >= run.size:
            os.kill(process.pid, signal.SIGKILL)
            killed_at = (run.lines_read, time.perf_counter() - started)
            break
        connection.close()
        time.sleep(0.2)
    process.wait()
    if killed_at is None:
        print("the re-run finished before it could be killed: use more --lines")
        return False
    after_kill = day_state()
    print(
        f"2. re-run SIGKILLed after {killed_at[1]:.1f} s, {killed_at[0]:,} lines read: {after_kill}"
    )
    kept = {k: v for k, v in after_kill.items() if k != "runs"} == {
        k: v for k, v in before.items() if k != "runs"
    }
    last, _ = measure("real", path)
    result = last["result"]
    final = day_state()
    books_after = integrity()
    print(f"3. re-run to the end in {last['seconds']:.1f} s: {final}")
    planned = (
        result["lines"] == written
        and result["discrepancies"] == plan.expected
        and result["matched"] == plan.matched
        and final["statements"] == 1
        and final["lines"] == written
    )
    interrupted = final["runs"].get("running", 0) == 0
    books = books_after == books_before
    print(
        "integrity_check before the kill and after the last run: "
        + ("the same" if books else f"DIFFERENT\n{books_before}\n---\n{books_after}")
        + f" ({books_after.splitlines()[-1] if books_after else ''})"
    )
    print(
        f"first result kept through the kill: {'yes' if kept else 'NO'}; last run as planned: "
        f"{'yes' if planned else 'NO'}; the killed run no longer shows as running: "
        f"{'yes' if interrupted else 'NO'}"
    )
    return kept and planned and interrupted and books


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--case", choices=("matched", "unknown"), default="matched")
    parser.add_argument("--child", choices=("floor", "real"))
    parser.add_argument("path", nargs="?")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument(
        "--kill-halfway",
        action="store_true",
        help="fault scenario: reconcile once, SIGKILL a re-run halfway, re-run to the end",
    )
    args = parser.parse_args()
    if args.child:
        answer = child_floor(args.path) if args.child == "floor" else child_real(args.path)
        sys.stdout.write(json.dumps(answer))
        return

    base, _ = use_scratch_database(DB_NAME)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    plan = Plan(args.lines, args.case)
    started = time.perf_counter()
    seed(plan)
    connection.close()
    with tempfile.TemporaryDirectory() as work:
        path = str(Path(work) / "bill.csv")
        with open(path, "wb") as out:
            written = write_bill(out, MCHID, bill_rows(plan))
        print(
            f"seeded and wrote {written:,} lines ({os.path.getsize(path) / 2**20:.0f} MB) "
            f"in {time.perf_counter() - started:.1f} s"
        )
        if args.kill_halfway:
            ok = kill_halfway(plan, path, written)
            if not args.keep:
                drop_database(base, DB_NAME)
            sys.exit(0 if ok else 1)
        floor, floor_rss = measure("floor", path)
        real, real_rss = measure("real", path)
    result = real["result"]
    ok = (
        result["lines"] == written
        and result["discrepancies"] == plan.expected
        and result["matched"] == plan.matched
    )
    ratio = real["seconds"] / floor["seconds"]
    print(f"case {args.case}, {written:,} lines on PostgreSQL")
    print(
        f"floor (parse + COPY into a plain table + one join): {floor['seconds']:.1f} s, "
        f"peak RSS {floor_rss:.0f} MB"
    )
    print(
        f"reconcile_file: {real['seconds']:.1f} s, peak RSS {real_rss:.0f} MB, {ratio:.2f}x the "
        f"floor"
    )
    print(f"matched {result['matched']:,}; discrepancies {result['discrepancies']}")
    print(
        "counts: "
        + ("as planned" if ok else f"WRONG, expected matched {plan.matched:,} and {plan.expected}")
    )
    if not args.keep:
        drop_database(base, DB_NAME)
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()

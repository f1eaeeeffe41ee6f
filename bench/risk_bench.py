#!/usr/bin/env python
"""A risk decision's cost: a payment decision and a log-in decision, in-process on PostgreSQL.

Creates a scratch database next to DATABASE_URL's (``cardex_risk_bench`` by default),
migrates it, loads a history (payments of many buyers, the benched buyer's own past payments,
assessments, decaying signals, log-ins) plus a dozen staff rules and list entries, warms the
rulebook, then times decisions one after the other through the real code:

* payment: ``payments.services.risk.risk_decision`` — the buyer's window as risk sees it
  and what risk remembers of the keys (signals, the seller link), sent together, then
  ``risk.engine.assess`` (lists, rules from memory, the stored assessment) — what
  ``risk_assess`` does before it applies the decision to the payment;
* fan-in: the same for a young account paying a small amount for the seller's new listing,
  so the seller link's query also counts the seller's young small buyers;
* log-in: ``risk.services.login_assess`` (history, burst, decision, the stored log-in).

The same at 10× and 100× the history, and two floors measured in the same run through the
same connection: ``SELECT 1`` (a round trip) and one row inserted and committed (the WAL
flush every stored decision pays). Prints median and p99 in ms and the queries per decision
(BEGIN/COMMIT are not counted). Each decision is committed, as the strictest reading: in
``risk_assess`` the assessment commits with the payment's new state, so that commit is
really the payment's. (A rolled-back variant is not measured: psycopg deallocates a
connection's prepared statements at every rollback, so it would measure that instead.)

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/cardex
    .venv/bin/python bench/risk_bench.py
    .venv/bin/python bench/risk_bench.py --decisions 2000 --scales 1 10 100
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
import warnings
from decimal import Decimal
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
warnings.filterwarnings("ignore", message="CARD_VAULT_KEYS is not set")
os.environ.update(
    DEBUG="false",
    DB_POOL="false",
    CONN_MAX_AGE="60",
    SECURE_SSL_REDIRECT="false",
    ALLOWED_HOSTS="testserver",
    CELERY_BROKER_URL="memory://",
    LOG_LEVEL="ERROR",
    SECRET_KEY=os.environ.get("SECRET_KEY") or "bench-" + "x7Qp2" * 12,
    CARD_VAULT_KEYS=os.environ.get("CARD_VAULT_KEYS")
    or "YmVuY2gtb25seS1jYXJkLXZhdWx0LWtleS0xMjM0NTY=",
)

from bench.benchdb import drop_database, scratch_database  # noqa: E402

BUYERS_PER_UNIT = 100  # other buyers per unit of history
PAYMENTS_PER_BUYER = 10  # their payments each (so one unit = 1 000 payments)
OWN_PAYMENTS_PER_UNIT = 20  # the benched buyer's own past payments per unit
SIGNALS_PER_UNIT = 200
LOGINS_PER_UNIT = 1_000


def prepare_static():
    """What does not grow with history: staff rules, list entries, the benched buyer, the
    seller, the payment being decided."""
    from django.core.management import call_command

    from accounts.models import User
    from payments.models import Payment
    from risk.models import ListEntry, Rule

    call_command("migrate", verbosity=0)
    for i in range(12):
        Rule.objects.create(
            name=f"rule {i}",
            reason_code=f"rule_{i}",
            feature=["amount", "method", "ip_velocity_1h", "channel_risk_weight"][i % 4],
            operator=["gte", "in", "gte", "gte"][i % 4],
            value=["5000", "card,paypal", "50", "3"][i % 4],
            score=10,
        )
    for i in range(50):
        ListEntry.objects.create(kind="block", field="ip", value=f"198.51.100.{i}")
    buyer = User.objects.create_user("bench-buyer", password="x", email="b@example.com")
    seller = User.objects.create_user("bench-seller", password="x")
    User.objects.filter(pk=buyer.pk).update(date_joined=buyer.date_joined - dt.timedelta(days=90))
    buyer.refresh_from_db()
    payment = Payment.objects.create(
        reference="order:BENCH",
        buyer=buyer,
        method="alipay",
        amount=Decimal("100.00"),
        client={"ip": "203.0.113.9", "device_id": "d-bench-device", "user_agent": "bench"},
    )
    return buyer, seller, payment


def grow_history(unit_from: int, unit_to: int, buyer) -> None:
    """Add history up to ``unit_to`` units (from ``unit_from``)."""
    from accounts.models import User
    from payments.models import Payment
    from risk.models import Assessment, Login, Signal

    now = time.time()
    for unit in range(unit_from, unit_to):
        others = User.objects.bulk_create(
            User(username=f"u{unit}-{i}", password="!") for i in range(BUYERS_PER_UNIT)
        )
        rows = []
        for k, other in enumerate(others):
            for j in range(PAYMENTS_PER_BUYER):
                rows.append(
                    Payment(
                        reference=f"order:H{unit}-{k}-{j}",
                        buyer=other,
                        method="alipay",
                        amount=Decimal("50.00"),
                        status="succeeded",
                        client={"ip": f"10.{unit % 250}.{k}.{j}", "device_id": f"d-{unit}-{k}"},
                    )
                )
        for j in range(OWN_PAYMENTS_PER_UNIT):
            rows.append(
                Payment(
                    reference=f"order:OWN{unit}-{j}",
                    buyer=buyer,
                    method="alipay",
                    amount=Decimal("80.00"),
                    status="succeeded",
                    client={"ip": "203.0.113.9", "device_id": "d-bench-device"},
                )
            )
        Payment.objects.bulk_create(rows, batch_size=2000)
        Assessment.objects.bulk_create(
            (
                Assessment(subject=f"payment:h{unit}-{i}", user_ref="0", score=0, decision="allow")
                for i in range(1000)
            ),
            batch_size=2000,
        )
        Signal.objects.bulk_create(
            Signal(field="ip", value=f"10.{unit % 250}.{i % 250}.1", reason="channel_risk_decline")
            for i in range(SIGNALS_PER_UNIT)
        )
        Login.objects.bulk_create(
            (
                Login(user_ref=str(buyer.pk if i % 10 == 0 else others[i % 100].pk), device="d-x")
                for i in range(LOGINS_PER_UNIT)
            ),
            batch_size=2000,
        )
    Payment.objects.filter(created_at__gte=dt.datetime.fromtimestamp(now - 5, dt.UTC)).exclude(
        reference="order:BENCH"
    ).update(created_at=dt.datetime.fromtimestamp(now, dt.UTC) - dt.timedelta(days=3))
    from django.db import connection

    with connection.cursor() as cursor:
        # what autovacuum does after a big load: the statistics, and the index entries of the
        # rows just moved back in time cleared (else the last hour's index range is full of them)
        cursor.execute("VACUUM ANALYZE")


def forget_own_decisions(payment) -> None:
    """Drop what the timed decisions stored (their assessments and log-ins), so each row
    starts from the history grown for it: a thousand fan-in payments or log-ins of one buyer
    within the hour are not the history being scaled, and would be scanned by the next
    row's fan-in and burst counts."""
    from risk.models import Assessment, Login

    Assessment.objects.filter(subject=f"payment:{payment.public_id}").delete()
    Login.objects.filter(session_key="bench").delete()


SHOW_QUERIES = False


def timed(function, n: int) -> tuple[float, float, int, float]:
    """Median and p99 wall ms over ``n`` calls, the queries of one call, and the median of
    this process's CPU ms per call (what the code costs, whatever the scheduler does to a
    shared machine's wall clock)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(20):  # warm: the rulebook, the connection, the plans
        function()
    with CaptureQueriesContext(connection) as captured:
        function()
    if SHOW_QUERIES:
        print("\n".join(f"    {q['sql'][:140]}" for q in captured.captured_queries))
    samples, cpu = [], []
    for _ in range(n):
        began, began_cpu = time.perf_counter(), time.process_time()
        function()
        samples.append((time.perf_counter() - began) * 1000)
        cpu.append((time.process_time() - began_cpu) * 1000)
    samples.sort()
    queries = [
        q for q in captured.captured_queries if q["sql"] not in ("BEGIN", "COMMIT", "ROLLBACK")
    ]  # the transaction's own statements are not queries (Django's test counter agrees)
    p99 = samples[int(len(samples) * 0.99) - 1]
    return statistics.median(samples), p99, len(queries), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=1000)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--db-name", default="cardex_risk_bench")
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database afterwards.")
    parser.add_argument("--show-queries", action="store_true", help="Print each decision's SQL.")
    args = parser.parse_args()
    global SHOW_QUERIES
    SHOW_QUERIES = args.show_queries

    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cardex")
    os.environ["DATABASE_URL"] = scratch_database(base_url, args.db_name)
    import django

    django.setup()
    from django.db import connection, transaction

    from payments.payables import PayableFacts
    from payments.services.risk import risk_decision
    from risk.services import LoginFacts, login_assess

    buyer, seller, payment = prepare_static()
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_floor (id bigserial PRIMARY KEY)")
    shop_facts = PayableFacts(seller_id=seller.pk)
    # a young account paying a small amount for a new listing: the fan-in count rides along
    fan_in_facts = PayableFacts(seller_id=seller.pk, account_age_days=0, listing_age_days=0)

    def payment_decision():  # in its transaction and committed, as risk_assess does
        with transaction.atomic():
            return risk_decision(payment, shop_facts)

    def fan_in_decision():
        with transaction.atomic():
            return risk_decision(payment, fan_in_facts)

    def login_decision():
        return login_assess(
            LoginFacts(
                user_ref=str(buyer.pk),
                device="d-bench-device",
                ip="203.0.113.9",
                region="CN",
                session_key="bench",
            )
        )

    def floor():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    def commit_floor():  # the durability every stored decision pays: one row, one WAL flush
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_floor DEFAULT VALUES")

    print(f"PostgreSQL scratch DB {args.db_name}, {os.cpu_count()} CPUs, {args.decisions} each")
    print(
        f"{'history':>8} {'payments':>9} {'decision':>9} {'median ms':>10} {'p99 ms':>7}"
        f" {'queries':>7} {'CPU ms':>7} {'SELECT 1':>9} {'commit':>7}"
    )
    grown = 0
    for scale in sorted(args.scales):
        grow_history(grown, scale, buyer)
        grown = scale
        from payments.models import Payment

        total = Payment.objects.count()
        floor_median = timed(floor, args.decisions)[0]
        commit_median = timed(commit_floor, args.decisions)[0]
        for name, function in (
            ("payment", payment_decision),
            ("fan-in", fan_in_decision),
            ("log-in", login_decision),
        ):
            median, p99, queries, cpu = timed(function, args.decisions)
            forget_own_decisions(payment)
            print(
                f"{scale:>7}× {total:>9} {name:>9} {median:>10.2f} {p99:>7.2f} {queries:>7}"
                f" {cpu:>7.2f} {floor_median:>9.3f} {commit_median:>7.2f}"
            )
    if not args.keep:
        from django.db import connections

        connections.close_all()
        drop_database(base_url, args.db_name)


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Notifications applied per second on PostgreSQL, through the real notify endpoint.

Builds N pending card payments in a scratch database, then delivers each one's signed
``payment_intent.succeeded`` webhook (Stripe-Signature HMAC, verified by the real card
backend) through Django's full request stack from several worker processes, with every notice
sent ``--copies`` times in shuffled order to exercise the exactly-once path; meanwhile the
parent process folds the notified outcomes into channel health every second, as the Celery
worker would. Prints notices/s and applied/s, and checks that each payment was credited once
and counted once in its channel's health.

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/cardex
    .venv/bin/python bench/notifications_bench.py
    .venv/bin/python bench/notifications_bench.py --payments 2000 --copies 2 --processes 3
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import random
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
# Production-shaped settings: no debug query log, persistent connections, plain HTTP in-process.
# The broker is in memory: this process plays the worker that folds channel health.
os.environ.update(
    DEBUG="false",
    SECURE_SSL_REDIRECT="false",
    CONN_MAX_AGE="60",
    ALLOWED_HOSTS="testserver",
    CELERY_BROKER_URL="memory://",
    LOG_LEVEL="ERROR",
    SECRET_KEY=os.environ.get("SECRET_KEY") or "bench-" + "x7Qp2" * 12,
    CARD_VAULT_KEYS=os.environ.get("CARD_VAULT_KEYS")
    or "YmVuY2gtb25seS1jYXJkLXZhdWx0LWtleS0xMjM0NTY=",
)

from bench.benchdb import drop_database, use_scratch_database  # noqa: E402

SECRET = "whsec_bench_0123456789abcdef"
DB_NAME = "cardex_bench_notify"


def shop_orders(n: int, buyer) -> list[str]:
    """With --shop: n one-code orders of a real listing, reserved as checkout does, so each
    applied notice also delivers a code (and posts the sale) on ``payment_succeeded``."""
    from marketplace.code_formats import CodeInput
    from marketplace.models import Brand
    from marketplace.services import listing_create, order_create

    brand = Brand.objects.create(name="Bench Card", slug="bench-card", category="shopping")
    seller = type(buyer).objects.create_user("bench-seller", password="x")
    listing = listing_create(
        seller=seller,
        brand=brand,
        face_value=Decimal("105.00"),
        price=Decimal("100.00"),
        codes=[CodeInput(f"BENCHCODE{i:010d}", "1234") for i in range(n)],
        screen=False,
    )
    return [
        f"order:{order_create(buyer=buyer, listing=listing, quantity=1).number}" for _ in range(n)
    ]


def prepare(n: int, *, shop: bool = False) -> list[tuple[bytes, str]]:
    from django.core.management import call_command

    from accounts.models import User
    from payments.models import Attempt, ChannelAccount, Payment

    call_command("migrate", verbosity=0)
    account = ChannelAccount(
        code="card",
        name="card",
        backend="card",
        methods=["card"],
        merchant_id="acct_bench",
        base_url="http://127.0.0.1:9/",
        fee_percent=Decimal("0.6"),
    )
    account.credentials = {"secret_key": "sk_test_bench", "webhook_secret": SECRET}
    account.save()
    buyer = User.objects.create_user("bench-buyer", password="x")
    references = shop_orders(n, buyer) if shop else [f"bench:{i}" for i in range(n)]
    payments = Payment.objects.bulk_create(
        Payment(
            reference=reference,
            buyer=buyer,
            method="card",
            amount=Decimal("100.00"),
            status="pending",
        )
        for reference in references
    )
    # A routing decision the size real ones have (ten candidate accounts), as stored on attempts.
    routing = {
        "method": "card",
        "amount": "100.00",
        "currency": "CNY",
        "band": "100-500",
        "approach": "exploit",
        "winner": "card",
        "order": [f"acct{i}" for i in range(10)],
        "candidates": [
            {
                "code": f"acct{i}",
                "estimate": 0.93,
                "sample": 0.95,
                "fee": "0.60",
                "expected_value": "94.4",
                "weight": "1.00",
                "score": "94.40",
                "breaker": "closed",
                "note": "",
                "excluded": "",
            }
            for i in range(10)
        ],
    }
    action = {
        "type": "widget",
        "url": "https://example.invalid/pay",
        "widget": {"publishable_key": "pk_test_bench", "client_secret": "pi_secret"},
    }
    attempts = Attempt.objects.bulk_create(
        Attempt(
            payment=p,
            account=account,
            method="card",
            amount=p.amount,
            fee=Decimal("0.60"),
            status="pending",
            out_trade_no=f"BENCH{i:012d}",
            routing=routing,
            action=action,
        )
        for i, p in enumerate(payments)
    )
    bodies = []
    for attempt in attempts:
        event = {
            "id": f"evt_{attempt.out_trade_no}",
            "object": "event",
            "type": "payment_intent.succeeded",
            "livemode": False,
            "created": int(time.time()),
            "data": {
                "object": {
                    "id": f"pi_{attempt.out_trade_no}",
                    "object": "payment_intent",
                    "status": "succeeded",
                    "amount": 10000,
                    "amount_received": 10000,
                    "currency": "cny",
                    "metadata": {"out_trade_no": attempt.out_trade_no, "merchant_id": "acct_bench"},
                }
            },
        }
        body = json.dumps(event).encode()
        bodies.append(body)
    return bodies


def signature(body: bytes) -> str:
    t = int(time.time())
    v1 = hmac.new(SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={v1}"


def _deliver(chunk: list[bytes], queue) -> None:
    """One web worker process: post its share of the notices through the full stack."""
    from django.db import connection
    from django.test import Client

    client = Client()
    latencies, bad = [], 0
    for body in chunk:
        started = time.perf_counter()
        response = client.post(
            "/payments/notify/card/",
            body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=signature(body),
        )
        latencies.append(time.perf_counter() - started)
        bad += response.status_code != 200
    connection.close()
    queue.put((latencies, bad))


def run(bodies: list[bytes], copies: int, processes: int) -> dict:
    """Like gunicorn workers: forked processes share nothing but the database."""
    import multiprocessing
    from queue import Empty

    from django.db import connections

    from payments import health

    work = [b for b in bodies for _ in range(copies)]
    random.Random(7).shuffle(work)
    chunks = [work[i::processes] for i in range(processes)]
    connections.close_all()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    started = time.perf_counter()
    pool = [ctx.Process(target=_deliver, args=(chunk, queue)) for chunk in chunks]
    for proc in pool:
        proc.start()
    # Meanwhile this process is the Celery worker: it folds the notified outcomes into channel
    # health every second, as payments.tasks.fold_health does, on the same two CPUs.
    results, folded = [], 0
    while len(results) < len(pool):
        try:
            results.append(queue.get(timeout=1))
        except Empty:
            folded += health.health_fold()
    for proc in pool:
        proc.join()
    elapsed = time.perf_counter() - started
    health.health_fold()  # the last second's outcomes
    latencies = sorted(latency for part, _ in results for latency in part)
    return {
        "notices": len(work),
        "seconds": elapsed,
        "per_second": len(work) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p95_ms": 1000 * latencies[int(len(latencies) * 0.95)],
        "non_200": sum(bad for _, bad in results),
        "folded": folded,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument(
        "--copies", type=int, default=1, help="deliveries of each notice (1 applied + duplicates)"
    )
    parser.add_argument(
        "--processes", type=int, default=2, help="web worker processes delivering notices"
    )
    parser.add_argument(
        "--shop", action="store_true", help="real orders: each applied notice also delivers a code"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    base, _ = use_scratch_database(DB_NAME)
    import django

    django.setup()
    try:
        bodies = prepare(args.payments, shop=args.shop)
        result = run(bodies, args.copies, args.processes)
        from payments import ledger
        from payments.models import ChannelHealth, Notification, Payment

        applied = Notification.objects.filter(outcome="applied").count()
        duplicates = Notification.objects.filter(outcome="duplicate").count()
        succeeded = Payment.objects.filter(status="succeeded").count()
        in_health = ChannelHealth.objects.get().state["counts"].get("succeeded", 0)
        print(f"payments={args.payments} copies={args.copies} processes={args.processes}")
        print(
            f"notices={result['notices']} in {result['seconds']:.2f}s → "
            f"{result['per_second']:.0f} notices/s, "
            f"{applied / result['seconds']:.0f} applied/s (p50 {result['p50_ms']:.1f} ms, p95 "
            f"{result['p95_ms']:.1f} ms), "
            f"non-200={result['non_200']}"
        )
        print(
            f"applied={applied} duplicates={duplicates} succeeded={succeeded} counted in "
            f"health={in_health} "
            f"(folded {result['folded']} while running) journal_total={ledger.journal_total()} "
            f"unbalanced={ledger.unbalanced_entries()}"
        )
        ok = (
            applied == args.payments == succeeded == in_health
            and duplicates == args.payments * (args.copies - 1)
            and ledger.journal_total() == 0
        )
        if args.shop:
            from marketplace.models import Order

            delivered = Order.objects.filter(status="delivered").count()
            print(f"orders delivered={delivered} of {args.payments}")
            ok = ok and delivered == args.payments
        print("exactly-once: OK" if ok else "exactly-once: FAILED")
        if not ok:
            sys.exit(1)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(base, DB_NAME)


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Reservations per second under concurrency (PostgreSQL, SELECT … FOR UPDATE SKIP LOCKED).

Creates a scratch database next to DATABASE_URL's (``cardex_bench`` by default), migrates it,
lists one listing with a big stock, then lets several worker processes (or threads) call the
real ``marketplace.services.order_create`` as fast as they can, all on that one listing —
the worst case for contention. Prints reservations/s and latency per concurrency level.

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/cardex
    .venv/bin/python bench/reservations_bench.py
    .venv/bin/python bench/reservations_bench.py --workers 1 2 4 8 --seconds 5 --mode process
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import threading
import time
import warnings
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
warnings.filterwarnings("ignore", message="CARD_VAULT_KEYS is not set")
# Production-shaped settings: no debug query log, persistent connections (a psycopg pool
# cannot cross the fork that starts each worker process).
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


def prepare(stock: int, workers: int) -> tuple[int, list[int]]:
    from django.core.management import call_command

    from accounts.models import User
    from marketplace import vault
    from marketplace.models import Brand, CardCode, Listing

    call_command("migrate", verbosity=0)
    seller = User.objects.create_user("bench-seller", password="x")
    buyers = [User.objects.create_user(f"bench-buyer-{i}", password="x").pk for i in range(workers)]
    brand = Brand.objects.create(name="Bench Card", slug="bench-card", category="voucher")
    listing = Listing.objects.create(seller=seller, brand=brand, face_value=100, price=90)
    token = vault.encrypt(
        "BENCHCODE"
    )  # the same token everywhere: encryption is not what we measure
    CardCode.objects.bulk_create(
        (
            CardCode(listing=listing, code_encrypted=token, fingerprint=f"bench-{i:08d}")
            for i in range(stock)
        ),
        batch_size=5000,
    )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE marketplace_cardcode")  # what autovacuum does after a big upload
    return listing.pk, buyers


def reserve_loop(listing_id: int, buyer_id: int, seconds: float, start_at: float, results) -> None:
    import django
    from django.db import connections

    django.setup()
    from accounts.models import User
    from marketplace.errors import OutOfStock
    from marketplace.models import Listing
    from marketplace.services import order_create

    buyer = User.objects.get(pk=buyer_id)
    listing = Listing.objects.get(pk=listing_id)
    latencies: list[float] = []
    sold_out = 0
    while time.time() < start_at:
        time.sleep(0.001)
    deadline = start_at + seconds
    while time.time() < deadline:
        began = time.perf_counter()
        try:
            order_create(buyer=buyer, listing=listing, quantity=1)
        except OutOfStock:
            sold_out += 1
            break
        latencies.append(time.perf_counter() - began)
    connections.close_all()
    results.put((len(latencies), latencies[:: max(1, len(latencies) // 2000)], sold_out))


def floor_loop(listing_id: int, buyer_id: int, seconds: float, start_at: float, results) -> None:
    """The floor: the smallest transaction of the same durability — one row inserted and
    committed (one WAL flush), through the same Django connection, no business logic."""
    import django
    from django.db import connections, transaction

    django.setup()
    from django.db import connection

    latencies: list[float] = []
    while time.time() < start_at:
        time.sleep(0.001)
    deadline = start_at + seconds
    while time.time() < deadline:
        began = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_floor (buyer) VALUES (%s)", [buyer_id])
        latencies.append(time.perf_counter() - began)
    connections.close_all()
    results.put((len(latencies), latencies[:: max(1, len(latencies) // 2000)], False))


def run(
    mode: str,
    workers: int,
    seconds: float,
    listing_id: int,
    buyers: list[int],
    target=None,
) -> dict:
    from django.db import connections

    connections.close_all()
    start_at = time.time() + 1.0
    if mode == "process":
        context = multiprocessing.get_context("fork")
        results = context.Queue()
        runners = [
            context.Process(
                target=target or reserve_loop,
                args=(listing_id, buyers[i], seconds, start_at, results),
            )
            for i in range(workers)
        ]
    else:
        import queue

        results = queue.Queue()
        runners = [
            threading.Thread(
                target=target or reserve_loop,
                args=(listing_id, buyers[i], seconds, start_at, results),
            )
            for i in range(workers)
        ]
    for runner in runners:
        runner.start()
    collected = [results.get() for _ in runners]
    for runner in runners:
        runner.join()
    total = sum(count for count, _, _ in collected)
    samples = sorted(latency for _, lats, _ in collected for latency in lats)
    return {
        "workers": workers,
        "reservations": total,
        "per_second": total / seconds,
        "p50_ms": statistics.median(samples) * 1000 if samples else 0.0,
        "p95_ms": samples[int(len(samples) * 0.95) - 1] * 1000 if samples else 0.0,
        "sold_out": any(flag for _, _, flag in collected),
    }


def check_integrity(listing_id: int) -> tuple[int, int, int]:
    """Orders made, codes reserved, and orders holding other than the one code they bought."""
    from django.db.models import Count

    from marketplace.models import CardCode, Order

    orders = Order.objects.filter(listing_id=listing_id).count()
    reserved = CardCode.objects.filter(listing_id=listing_id, order__isnull=False).count()
    wrong = (
        Order.objects.filter(listing_id=listing_id).annotate(n=Count("codes")).exclude(n=1).count()
    )
    return orders, reserved, wrong


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--stock", type=int, default=60_000)
    parser.add_argument("--mode", choices=["process", "thread"], default="process")
    parser.add_argument("--db-name", default="cardex_bench")
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database afterwards.")
    args = parser.parse_args()

    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cardex")
    os.environ["DATABASE_URL"] = scratch_database(base_url, args.db_name)
    import django

    django.setup()
    listing_id, buyers = prepare(args.stock, max(args.workers))
    print(
        f"PostgreSQL scratch DB {args.db_name}: one listing, {args.stock} codes, {os.cpu_count()} "
        f"CPUs, mode={args.mode}"
    )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_floor (id bigserial PRIMARY KEY, buyer bigint)")
    print(
        f"{'workers':>7} {'reservations':>12} {'per second':>11} {'p50 ms':>7} {'p95 ms':>7}"
        f" {'floor/s':>8} {'floor p50':>9} {'÷ floor':>7}"
    )
    for workers in args.workers:
        floor = run(args.mode, workers, args.seconds, listing_id, buyers, target=floor_loop)
        figures = run(args.mode, workers, args.seconds, listing_id, buyers)
        print(
            f"{figures['workers']:>7} {figures['reservations']:>12} {figures['per_second']:>11.0f} "
            f"{figures['p50_ms']:>7.1f} {figures['p95_ms']:>7.1f}"
            f" {floor['per_second']:>8.0f} {floor['p50_ms']:>9.1f}"
            f" {figures['per_second'] / floor['per_second']:>7.2f}"
            + ("  (stock ran out)" if figures["sold_out"] else "")
        )
    orders, reserved, wrong = check_integrity(listing_id)
    print(
        f"check: {orders} orders, {reserved} codes reserved, {wrong} orders holding other than "
        f"exactly one code"
    )
    if not args.keep:
        from django.db import connections

        connections.close_all()
        drop_database(base_url, args.db_name)


if __name__ == "__main__":
    main()

"""Whole purchases as load against `make serve` (docs/benchmarks.md, "Purchases under load").

Many distinct buyers, each buying once in a while as a real shop's buyers do: browse the
catalogue, create an order, start an Alipay payment, approve it on the sandbox cashier (the
simulators' own process), then poll the order until the code arrives. Loopback only, bounded
by --seconds. The same client first measures how fast the server answers /healthz — the
floor every other figure is read against — and the run ends with `manage.py integrity_check`.

    # once: buyers with API tokens and stock, in the database `make serve` uses
    .venv/bin/python bench/load/purchase_load.py seed --buyers 4000 --codes 3000
    # the run
    .venv/bin/python bench/load/purchase_load.py run --concurrency 50 --seconds 30

The client stands in for the proxy in front of the site: each buyer comes from an address of
its own in X-Forwarded-For, so serve with TRUSTED_PROXY_COUNT=1 (risk's per-IP velocity would
otherwise rightly stop thousands of buyers sharing 127.0.0.1).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUYERS_FILE = ROOT / "var" / "load_buyers.json"
USERNAME_PREFIX = "loadbuyer"
STEPS = ("browse", "order", "pay", "cashier", "approve", "delivered")


def seed(buyers: int, codes: int) -> None:
    """Buyers (established accounts, one API token each) and a test-card listing with enough
    codes, in bulk: one password hash for all, bulk inserts, the vault's real encryption."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    import datetime as dt
    import secrets
    import string

    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from marketplace.code_formats import CodeInput
    from marketplace.models import Brand, CardCode, Listing
    from marketplace.services import listing_codes_add, listing_create

    User = get_user_model()
    password = make_password("load-buyer-pass")
    joined = timezone.now() - dt.timedelta(days=90)
    existing = set(
        User.objects.filter(username__startswith=USERNAME_PREFIX).values_list("username", flat=True)
    )
    new = [
        User(
            username=f"{USERNAME_PREFIX}{i:05d}",
            email=f"{USERNAME_PREFIX}{i:05d}@load.test",
            password=password,
            date_joined=joined,
        )
        for i in range(buyers)
        if f"{USERNAME_PREFIX}{i:05d}" not in existing
    ]
    User.objects.bulk_create(new, batch_size=1000)
    users = list(User.objects.filter(username__startswith=USERNAME_PREFIX).order_by("username"))
    have = set(Token.objects.filter(user__in=users).values_list("user_id", flat=True))
    Token.objects.bulk_create(
        [Token(user=u, key=Token.generate_key()) for u in users if u.pk not in have],
        batch_size=1000,
    )
    tokens = dict(Token.objects.filter(user__in=users).values_list("user__username", "key"))

    seller = User.objects.get(username="seller2")
    brand = Brand.objects.get(slug="test-card")
    listing = Listing.objects.filter(
        seller=seller, brand=brand, face_value=Decimal("10.00"), status=Listing.Status.ACTIVE
    ).first()
    alphabet = string.ascii_uppercase + string.digits

    def batch(n):
        return [
            CodeInput(code="LOAD" + "".join(secrets.choice(alphabet) for _ in range(16)))
            for _ in range(n)
        ]

    if listing is None:
        listing = listing_create(
            seller=seller,
            brand=brand,
            face_value=Decimal("10.00"),
            price=Decimal("9.50"),
            codes=batch(min(codes, 500)),
            screen=False,
        )
    while (missing := codes - listing.codes.filter(status=CardCode.Status.AVAILABLE).count()) > 0:
        listing_codes_add(
            listing=listing, seller=seller, codes=batch(min(missing, 500)), screen=False
        )
    BUYERS_FILE.parent.mkdir(exist_ok=True)
    BUYERS_FILE.write_text(
        json.dumps(
            {
                "listing": listing.pk,
                "brand": brand.pk,
                "tokens": [tokens[u.username] for u in users],
            }
        )
    )
    print(
        f"{len(users)} buyers with tokens, listing {listing.pk} with {codes}+ codes "
        f"-> {BUYERS_FILE.relative_to(ROOT)}"
    )


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter[str] = Counter()
        self.purchases = 0
        self.codes: list[str] = []

    def step(self, name: str, seconds: float) -> None:
        with self.lock:
            self.times[name].append(seconds)

    def error(self, what: str) -> None:
        with self.lock:
            self.errors[what] += 1


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] * 1000


def floor(client_factory, base: str, concurrency: int, seconds: float) -> float:
    """/healthz answers per second from this same client at the same concurrency. Clients are
    made and warmed before the clock starts (making one costs more than a request)."""
    clients = [client_factory() for _ in range(concurrency)]
    for client in clients:
        client.get(f"{base}/healthz")
    count = [0]
    lock = threading.Lock()
    start = threading.Barrier(concurrency + 1)

    def hammer(client):
        start.wait()
        n = 0
        while time.monotonic() < stop:
            if client.get(f"{base}/healthz").status_code == 200:
                n += 1
        with lock:
            count[0] += n

    threads = [threading.Thread(target=hammer, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    stop = time.monotonic() + seconds
    start.wait()
    began = time.monotonic()
    for t in threads:
        t.join()
    return count[0] / (time.monotonic() - began)


FORM = re.compile(r'<form[^>]*method="post"[^>]*>(.*?)</form>', re.S | re.I)
ACTION = re.compile(r'<form[^>]*action="([^"]*)"', re.I)
HIDDEN = re.compile(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', re.I)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _process_group(pid: str) -> str | None:
    """Which part of the running system a process is: the web or simulator gunicorn (told
    apart by the address config.serve gives each), a Celery worker by its queue, beat,
    PostgreSQL, Redis, RabbitMQ; None for everything else on the machine."""
    proc = Path("/proc") / pid
    try:
        cmd = (proc / "cmdline").read_bytes().split(b"\0")
        name = (proc / "comm").read_text().strip()
    except OSError:
        return None
    words = [w.decode(errors="replace") for w in cmd if w]
    if name.startswith("postgres"):
        return "postgres"
    if name.startswith("redis-server"):
        return "redis"
    if name == "beam.smp":
        return "rabbitmq"
    line = " ".join(words)
    if "gunicorn" in line and "config.wsgi" in line:
        try:
            environ = (proc / "environ").read_bytes()
        except OSError:
            return "web"
        return "simulators" if b"ROOT_URLCONF=config.sandbox_urls" in environ else "web"
    if "celery" in line and " worker" in line and "-Q" in words:
        return "worker-" + words[words.index("-Q") + 1]
    if "celery" in line and " beat" in line:
        return "beat"
    return None


def cpu_by_group() -> dict[str, float]:
    """CPU seconds used so far by each part of the system (utime + stime of its processes;
    a process that ended between two readings is missed — the serve processes do not)."""
    totals: dict[str, float] = defaultdict(float)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or (group := _process_group(entry.name)) is None:
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        totals[group] += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return totals


def cpu_self() -> float:
    times = os.times()
    return times.user + times.system


def purchase(client, base: str, token: str, ip: str, plan: dict, stats: Stats, poll: float) -> None:
    """One buyer's whole purchase; each step timed, any failure counted by step."""
    headers = {"Authorization": f"Token {token}", "X-Forwarded-For": ip}

    def timed(name, call):
        started = time.perf_counter()
        response = call()
        stats.step(name, time.perf_counter() - started)
        return response

    listings = timed(
        "browse",
        lambda: client.get(
            f"{base}/api/v1/listings/", params={"brand": plan["brand"]}, headers=headers
        ),
    )
    if listings.status_code != 200:
        return stats.error(f"browse {listings.status_code}")
    order = timed(
        "order",
        lambda: client.post(
            f"{base}/api/v1/orders/",
            json={"listing": plan["listing"], "quantity": 1},
            headers=headers,
        ),
    )
    if order.status_code != 201:
        return stats.error(f"order {order.status_code}")
    number = order.json()["number"]
    pay = timed(
        "pay",
        lambda: client.post(
            f"{base}/api/v1/orders/{number}/pay/", json={"method": "alipay"}, headers=headers
        ),
    )
    if pay.status_code not in (200, 201):
        return stats.error(f"pay {pay.status_code}")
    payment = pay.json()["payment"]
    if payment["status"] != "pending" or not (payment.get("action") or {}).get("url"):
        return stats.error(f"pay status {payment['status']}")
    url = payment["action"]["url"]
    page = timed("cashier", lambda: client.get(url, follow_redirects=True))
    forms = FORM.finditer(page.text) if page.status_code == 200 else ()
    form = next((f for f in forms if 'data-testid="sandbox-approve"' in f.group(0)), None)
    if form is None:
        return stats.error(f"cashier {page.status_code}")
    action = ACTION.search(form.group(0))
    target = str(page.url.join(action.group(1))) if action and action.group(1) else str(page.url)
    fields = dict(HIDDEN.findall(form.group(0)))
    fields.update({"decision": "approve", "return": "0"})
    approved = timed("approve", lambda: client.post(target, data=fields))
    if approved.status_code != 200:
        return stats.error(f"approve {approved.status_code}")
    started = time.perf_counter()
    deadline = started + 30
    while time.perf_counter() < deadline:
        state = client.get(f"{base}/api/v1/orders/{number}/", headers=headers)
        if state.status_code == 200 and state.json().get("codes"):
            stats.step("delivered", time.perf_counter() - started)
            with stats.lock:
                stats.purchases += 1
                stats.codes.extend(c["code"] for c in state.json()["codes"])
            return
        time.sleep(poll)
    stats.error("no code within 30 s")


CURSOR_FILE = ROOT / "var" / "load_cursor.json"


def _cursor_read() -> int:
    try:
        return int(json.loads(CURSOR_FILE.read_text())["next"])
    except (OSError, ValueError, KeyError):
        return 0


def _cursor_write(value: int) -> None:
    CURSOR_FILE.write_text(json.dumps({"next": value}))


def run(base: str, concurrency: int, seconds: float, floor_seconds: float, poll: float) -> int:
    import httpx

    plan = json.loads(BUYERS_FILE.read_text())
    tokens = plan["tokens"]
    random.Random(7).shuffle(tokens)
    # Each run goes on from the buyer after the last run's last one (var/load_cursor.json), so
    # a buyer buys again only after the other thousands have: a run straight after another
    # must not meet buyers who just paid, whom risk's hourly velocity rightly steps up.
    start = _cursor_read() % len(tokens)
    order = list(enumerate(tokens))
    order = order[start:] + order[:start]

    def client_factory():
        # connections kept idle for less than gunicorn's keepalive (5 s), so the client never
        # sends on one the server is closing (a browser retries that; httpx does not)
        limits = httpx.Limits(max_connections=4, keepalive_expiry=3)
        return httpx.Client(timeout=60, limits=limits)

    healthz = floor(client_factory, base, concurrency, floor_seconds)
    print(f"floor: /healthz {healthz:.0f} req/s at {concurrency} concurrent", flush=True)

    stats = Stats()
    queue = iter(order)
    taken = 0
    queue_lock = threading.Lock()

    clients = [client_factory() for _ in range(concurrency)]

    def buyer_loop(client):
        nonlocal taken
        while time.monotonic() < stop:
            with queue_lock:
                item = next(queue, None)
                taken += item is not None
            if item is None:
                return
            i, token = item
            ip = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255 or 1}"
            try:
                purchase(client, base, token, ip, plan, stats, poll)
            except Exception as exc:  # a timeout or a refused connection is a counted error
                stats.error(type(exc).__name__)

    cpu_before, client_before = cpu_by_group(), cpu_self()
    started = time.monotonic()
    stop = started + seconds
    threads = [threading.Thread(target=buyer_loop, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    cpu_after, client_after = cpu_by_group(), cpu_self()
    _cursor_write(start + taken)
    rate = stats.purchases / elapsed
    doubled = sum(n - 1 for n in Counter(stats.codes).values() if n > 1)
    print(
        f"purchases: {stats.purchases} in {elapsed:.1f} s = {rate:.2f}/s "
        f"({rate / healthz:.3f} of the floor), concurrency {concurrency}"
    )
    print(f"{'step':<10} {'n':>6} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'mean ms':>9}")
    for step in STEPS:
        values = stats.times.get(step, [])
        mean = statistics.fmean(values) * 1000 if values else float("nan")
        print(
            f"{step:<10} {len(values):>6} {_pct(values, 50):>9.0f} {_pct(values, 95):>9.0f} "
            f"{_pct(values, 99):>9.0f} {mean:>9.0f}"
        )
    used = {g: cpu_after[g] - cpu_before.get(g, 0.0) for g in cpu_after}
    used["load client"] = client_after - client_before
    used = {g: v for g, v in used.items() if v > 0.005}
    total = sum(used.values())
    per = max(stats.purchases, 1)
    print(
        f"CPU per purchase: {total / per * 1000:.0f} ms in all "
        f"({total / elapsed:.2f} of {os.cpu_count()} CPUs busy with the system under test)"
    )
    for group, seconds_used in sorted(used.items(), key=lambda kv: -kv[1]):
        print(f"  {group:<22} {seconds_used / per * 1000:>7.1f} ms")
    print(f"errors: {sum(stats.errors.values())} {dict(stats.errors)}")
    print(f"double-sold codes seen by buyers: {doubled}")
    check = subprocess.run(
        [sys.executable, "manage.py", "integrity_check", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    print(f"integrity_check: exit {check.returncode} {check.stdout.strip()[-400:]}")
    return 0 if check.returncode == 0 and doubled == 0 else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("seed")
    s.add_argument("--buyers", type=int, default=4000)
    s.add_argument("--codes", type=int, default=3000)
    r = sub.add_parser("run")
    r.add_argument("--base", default=os.environ.get("SITE_URL", "http://127.0.0.1:8400"))
    r.add_argument("--concurrency", type=int, default=50)
    r.add_argument("--seconds", type=float, default=30, help="bounded: stop starting buyers")
    r.add_argument("--floor-seconds", type=float, default=5)
    r.add_argument(
        "--poll",
        type=float,
        default=1.0,
        help="seconds between order polls after approving (the order page polls every 2 s)",
    )
    args = parser.parse_args()
    if args.command == "seed":
        seed(args.buyers, args.codes)
    else:
        sys.exit(
            run(
                args.base.rstrip("/"),
                args.concurrency,
                min(args.seconds, 300),
                args.floor_seconds,
                args.poll,
            )
        )


if __name__ == "__main__":
    main()

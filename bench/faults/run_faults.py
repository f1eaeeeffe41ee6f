"""Faults injected into a running `make serve` (docs/reliability.md). Each scenario runs real
purchases (bench/load/purchase_load.py's buyers), breaks something, waits for the system to
recover on its own, and ends with `manage.py integrity_check`; it exits non-zero when a
purchase was lost or doubled or the check fails.

    .venv/bin/python bench/faults/run_faults.py duplicates --purchases 20
    .venv/bin/python bench/faults/run_faults.py lost --purchases 20 --share 0.3
    .venv/bin/python bench/faults/run_faults.py worker-kill --purchases 30
    .venv/bin/python bench/faults/run_faults.py redis-restart --purchases 30 --redis-port 6391
    .venv/bin/python bench/faults/run_faults.py channel-down --purchases 30
    .venv/bin/python bench/faults/run_faults.py pg-restart --purchases 20 --pg-data /tmp/pgfault

Run it in the environment `make serve` has (DATABASE_URL, CARD_VAULT_KEYS…): it reads and
toggles sandbox faults in the same database. `worker-kill` wants `make serve` started with a
short CELERY_VISIBILITY_TIMEOUT (e.g. 20) so Redis hands the killed tasks back within the run;
`redis-restart` wants a Redis of the run's own (`--redis-port`), never a shared one.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "load"))

from purchase_load import BUYERS_FILE, FORM, HIDDEN  # noqa: E402


def django_setup():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def integrity() -> bool:
    check = subprocess.run(
        [sys.executable, "manage.py", "integrity_check", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    print(f"integrity_check: exit {check.returncode} {check.stdout.strip()[-400:]}")
    return check.returncode == 0


class Buyer:
    """One buyer's purchase split in two halves, so a fault can fall between them."""

    def __init__(self, client, base, token, ip, plan):
        self.client, self.base, self.plan = client, base, plan
        self.headers = {"Authorization": f"Token {token}", "X-Forwarded-For": ip}
        self.number = None

    def start(self) -> str:
        """Order and payment start; returns the cashier URL."""
        order = self.client.post(
            f"{self.base}/api/v1/orders/",
            json={"listing": self.plan["listing"], "quantity": 1},
            headers=self.headers,
        )
        order.raise_for_status()
        self.number = order.json()["number"]
        pay = self.client.post(
            f"{self.base}/api/v1/orders/{self.number}/pay/",
            json={"method": "alipay"},
            headers=self.headers,
        )
        pay.raise_for_status()
        payment = pay.json()["payment"]
        if not payment.get("action"):
            raise RuntimeError(f"order {self.number}: payment {payment['status']}, no cashier")
        return payment["action"]["url"]

    def approve(self, url: str) -> None:
        page = self.client.get(url, follow_redirects=True)
        form = next(f for f in FORM.finditer(page.text) if "sandbox-approve" in f.group(0))
        fields = dict(HIDDEN.findall(form.group(0)))
        fields.update({"decision": "approve", "return": "0"})
        self.client.post(str(page.url), data=fields).raise_for_status()

    def codes(self) -> list[str]:
        state = self.client.get(f"{self.base}/api/v1/orders/{self.number}/", headers=self.headers)
        return [c["code"] for c in state.json().get("codes") or []] if state.is_success else []


def buyers(n: int, base: str, offset: int) -> list[Buyer]:
    import httpx

    plan = json.loads(BUYERS_FILE.read_text())
    tokens = plan["tokens"][offset : offset + n]
    return [
        Buyer(httpx.Client(timeout=60), base, t, f"10.200.{i // 250}.{i % 250 + 1}", plan)
        for i, t in enumerate(tokens, start=offset)
    ]


def wait_delivered(group: list[Buyer], seconds: float) -> tuple[int, float, list[str]]:
    """Poll until every buyer has its code or time is up: (delivered, seconds, codes)."""
    started = time.monotonic()
    done: dict[int, list[str]] = {}
    while time.monotonic() - started < seconds and len(done) < len(group):
        for i, buyer in enumerate(group):
            if i not in done and (codes := buyer.codes()):
                done[i] = codes
        time.sleep(1)
    return len(done), time.monotonic() - started, [c for cs in done.values() for c in cs]


def report(name: str, group: list[Buyer], delivered: int, took: float, codes: list[str]) -> int:
    doubled = len(codes) - len(set(codes))
    print(
        f"{name}: {delivered}/{len(group)} purchases delivered in {took:.0f} s, "
        f"{doubled} codes doubled"
    )
    ok = integrity()
    return 0 if ok and delivered == len(group) and doubled == 0 else 1


def set_fault(**fields) -> None:
    from payments.sandbox.models import SandboxFault

    SandboxFault.objects.update_or_create(channel="alipay", defaults=fields)


# --- scenarios ------------------------------------------------------------------------------


def lost(args) -> int:
    """A share of the provider's notifications never sent: the query task must find them."""
    django_setup()
    group = buyers(args.purchases, args.base, args.offset)
    rng = random.Random(args.seed)
    dropped = 0
    try:
        for buyer in group:  # one at a time: the fault switch is read when the payer approves
            url = buyer.start()
            lose = rng.random() < args.share
            dropped += lose
            set_fault(lose_notifications=lose)
            buyer.approve(url)
    finally:
        set_fault(lose_notifications=False)
    print(f"lost: {dropped} of {len(group)} notifications never sent")
    return report("lost", group, *wait_delivered(group, args.wait))


def duplicates(args) -> int:
    """The provider's notices of finished purchases again, ten times each, shuffled and
    concurrent: every one acknowledged, nothing applied twice."""
    django_setup()
    import httpx

    from payments.models import JournalEntry, Notification

    group = buyers(args.purchases, args.base, args.offset)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda b: b.approve(b.start()), group))
    delivered, took, codes = wait_delivered(group, args.wait)
    applied = list(
        Notification.objects.filter(channel_code="alipay", outcome="applied").order_by("-pk")[
            : len(group)
        ]
    )
    replays = [n for n in applied for _ in range(10)]
    random.Random(args.seed).shuffle(replays)
    entries = JournalEntry.objects.count()
    seen = Notification.objects.filter(outcome="duplicate").count()
    answers: list[int] = []
    lock = threading.Lock()

    def replay(note):
        headers = {
            k: v
            for k, v in note.headers.items()
            if k.lower() in {"content-type"} or k.lower().startswith("x-")
        }
        r = httpx.post(
            f"{args.base}/payments/notify/alipay/",
            content=bytes(note.body),
            headers=headers,
            timeout=60,
        )
        with lock:
            answers.append(r.status_code if r.text.strip() == "success" else -r.status_code)

    with ThreadPoolExecutor(args.concurrency) as pool:
        list(pool.map(replay, replays))
    acknowledged = sum(1 for a in answers if a == 200)
    new_entries = JournalEntry.objects.count() - entries
    marked = Notification.objects.filter(outcome="duplicate").count() - seen
    print(
        f"duplicates: {len(replays)} replays of {len(applied)} notices, {acknowledged} "
        f"acknowledged 'success', {marked} stored as duplicates, {new_entries} new journal "
        "entries"
    )
    status = report("duplicates", group, delivered, took, codes)
    clean = acknowledged == marked == len(replays) and new_entries == 0
    return status or (0 if clean else 1)


def _worker_pids(queue: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", "--", f"-n {queue}@"], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def worker_kill(args) -> int:
    """SIGKILL the workers that deliver and apply notifications while purchases are in
    flight; the supervisor starts them again and the broker hands back what they held."""
    django_setup()
    group = buyers(args.purchases, args.base, args.offset)
    urls = [b.start() for b in group]
    killed = []

    def killer():
        time.sleep(args.kill_after)
        for queue in ("sandbox", "payments"):
            for pid in _worker_pids(queue):
                os.kill(pid, signal.SIGKILL)
                killed.append((queue, pid))

    thread = threading.Thread(target=killer)
    thread.start()
    with ThreadPoolExecutor(args.concurrency) as pool:
        list(pool.map(lambda pair: pair[0].approve(pair[1]), zip(group, urls, strict=True)))
    thread.join()
    print(f"worker-kill: SIGKILLed {killed}")
    return report("worker-kill", group, *wait_delivered(group, args.wait))


def redis_restart(args) -> int:
    """Stop the broker for a few seconds in the middle of purchases, then start it again."""
    django_setup()
    group = buyers(args.purchases, args.base, args.offset)
    urls = [b.start() for b in group]
    port = str(args.redis_port)
    half = len(group) // 2
    with ThreadPoolExecutor(args.concurrency) as pool:
        list(
            pool.map(
                lambda pair: pair[0].approve(pair[1]), zip(group[:half], urls[:half], strict=True)
            )
        )
        subprocess.run(["redis-cli", "-p", port, "shutdown", "nosave"], check=False)
        time.sleep(args.down)
        failures = []
        for buyer, url in zip(group[half:], urls[half:], strict=True):
            try:
                buyer.approve(url)
            except Exception as exc:  # the cashier may answer 500 while the broker is away
                failures.append(type(exc).__name__)
        subprocess.Popen(
            [
                "redis-server",
                "--port",
                port,
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "yes",
            ]
        )
    print(
        f"redis-restart: broker down {args.down} s; approvals during the outage that "
        f"failed: {len(failures)} {failures[:3]}"
    )
    return report("redis-restart", group, *wait_delivered(group, args.wait))


def channel_down(args) -> int:
    """Alipay's API answers 503 for the middle third of the purchases: routing fails them over
    to the other account serving Alipay (the bank aggregator) and comes back once probes
    succeed."""
    django_setup()
    from django.db.models import Count

    from payments.models import Attempt

    group = buyers(args.purchases, args.base, args.offset)
    third = len(group) // 3
    first = Attempt.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

    def buy(buyer):
        buyer.approve(buyer.start())

    with ThreadPoolExecutor(args.concurrency) as pool:
        list(pool.map(buy, group[:third]))
        set_fault(down=True)
        try:
            list(pool.map(buy, group[third : 2 * third]))
        finally:
            set_fault(down=False)
        list(pool.map(buy, group[2 * third :]))
    outcome = wait_delivered(group, args.wait)
    served = dict(
        Attempt.objects.filter(pk__gt=first, status="succeeded")
        .values_list("account__code")
        .annotate(n=Count("pk"))
        .order_by()
    )
    print(f"channel-down: succeeded attempts per account {served}")
    return report("channel-down", group, *outcome)


def pg_restart(args) -> int:
    """Restart PostgreSQL (a cluster of the run's own, ``--pg-data``) between two halves of
    purchases, and try purchases while it is down: each must fail with an answer (no hang, no
    half-made order), and once it is back Cardex serves again without a restart of its own."""
    django_setup()
    from django.db import connections

    pg_ctl = [args.pg_ctl, "-D", args.pg_data, "-w", "-t", "60"]
    group = buyers(args.purchases, args.base, args.offset)
    half = len(group) // 2
    with ThreadPoolExecutor(args.concurrency) as pool:
        list(pool.map(lambda b: b.approve(b.start()), group[:half]))
        connections.close_all()
        subprocess.run([*pg_ctl, "stop", "-m", "fast"], check=True, capture_output=True)
        answers: dict[str, int] = {}
        outage = buyers(args.concurrency, args.base, args.offset + len(group))
        started = time.monotonic()
        for buyer in outage:
            try:
                buyer.start()
                answers["ok"] = answers.get("ok", 0) + 1
            except Exception as exc:  # what a client sees while the database is away
                status = getattr(getattr(exc, "response", None), "status_code", None)
                key = str(status or type(exc).__name__)
                answers[key] = answers.get(key, 0) + 1
        answered_in = (time.monotonic() - started) / max(1, len(outage))
        time.sleep(args.down)
        subprocess.run([*pg_ctl, "start", "-l", f"{args.pg_data}/restart.log"], check=True)
        back = time.monotonic()
        list(pool.map(lambda b: b.approve(b.start()), group[half:]))
        recovered_in = time.monotonic() - back
    print(
        f"pg-restart: PostgreSQL down {args.down:.0f} s; {len(outage)} purchases tried during "
        f"the outage answered {answers} ({answered_in * 1000:.0f} ms each); the second half "
        f"of {len(group) - half} purchases went through {recovered_in:.1f} s after it was back"
    )
    return report("pg-restart", group, *wait_delivered(group, args.wait))


SCENARIOS = {
    "channel-down": channel_down,
    "pg-restart": pg_restart,
    "lost": lost,
    "duplicates": duplicates,
    "worker-kill": worker_kill,
    "redis-restart": redis_restart,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--base", default=os.environ.get("SITE_URL", "http://127.0.0.1:8400"))
    parser.add_argument("--purchases", type=int, default=20)
    parser.add_argument(
        "--offset", type=int, default=None, help="first buyer to use (default: a random block)"
    )
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--share", type=float, default=0.3, help="lost: share of notices lost")
    parser.add_argument("--wait", type=float, default=180, help="seconds allowed to recover")
    parser.add_argument("--kill-after", type=float, default=1.0)
    parser.add_argument("--redis-port", type=int, default=6391)
    parser.add_argument("--down", type=float, default=5.0)
    parser.add_argument("--pg-data", help="pg-restart: the data directory of the run's cluster")
    parser.add_argument("--pg-ctl", default="pg_ctl", help="pg-restart: the pg_ctl to use")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.offset is None:
        args.offset = random.randrange(0, 3000)
    sys.exit(SCENARIOS[args.scenario](args))


if __name__ == "__main__":
    main()

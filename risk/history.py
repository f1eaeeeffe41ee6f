"""What risk remembers between transactions: decaying signals on keys (a channel's risk
decline, a suspicious log-in) and sightings of accounts with devices, address ranges and
payout accounts (what links a buyer to a seller). Each read is one query whatever the
history: signals older than :data:`SIGNAL_HORIZON_DAYS` are never read, and at most
:data:`SIGNAL_ROWS` of the newest are."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from collections.abc import Iterable

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from risk.models import Assessment, Sighting, Signal

SIGNAL_HORIZON_DAYS = 60  # ~ eight half-lives of a week: below 1/256 of its weight
SIGNAL_ROWS = 200
_FAN_IN = "#fan-in"  # the fan-in count's row in seller_links' answer (no sighting's field)

Key = tuple[str, str]  # (field, value), e.g. ("device", "d-…"), ("user", "42")


def ip_range(ip: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) network of an address, '' when it is not one."""
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return ""
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def _horizon(now: dt.datetime) -> dt.datetime:
    return now - dt.timedelta(days=SIGNAL_HORIZON_DAYS)


def _present(keys: Iterable[Key]) -> list[Key]:
    return list(dict.fromkeys((f, v[:120]) for f, v in keys if v))


def signal_record(
    keys: Iterable[Key],
    *,
    reason: str,
    source: str = "",
    weight: float = 1.0,
    half_life_days: float = 7.0,
) -> int:
    """One signal per key given (empty values are skipped); returns how many were stored."""
    rows = [
        Signal(
            field=field,
            value=value,
            reason=reason[:40],
            source=source[:80],
            weight=weight,
            half_life_days=half_life_days,
        )
        for field, value in _present(keys)
    ]
    Signal.objects.bulk_create(rows)
    return len(rows)


def signal_weights(keys: Iterable[Key], *, now: dt.datetime | None = None) -> dict[str, float]:
    """The decayed weight per reason over the keys, the strongest key counting once per
    reason and source (one decline seen on the buyer, their device and their address is one
    decline, not three)."""
    keys = _present(keys)
    if not keys:
        return {}
    now = now or timezone.now()
    # Hand-written: this runs in every payment decision, and building the ORM query of an
    # OR of keys costs more than running it (bench/risk_bench.py).
    pairs = " OR ".join(["(field = %s AND value = %s)"] * len(keys))
    with connection.cursor() as cursor:
        sql = (
            "SELECT reason, source, weight, half_life_days, created_at"  # noqa: S608 -- model metadata and placeholders
            f" FROM {Signal._meta.db_table} WHERE ({pairs}) AND created_at >= %s"
            " AND cleared_at IS NULL ORDER BY created_at DESC LIMIT %s"
        )
        cursor.execute(
            sql,
            [*(part for key in keys for part in key), _horizon(now), SIGNAL_ROWS],
        )
        rows = cursor.fetchall()
    events: dict[tuple[str, str, dt.datetime], float] = {}
    for reason, source, weight, half_life, created_at in rows:
        if timezone.is_naive(created_at):  # SQLite hands back naive UTC
            created_at = timezone.make_aware(created_at, dt.UTC)
        age_days = max(0.0, (now - created_at).total_seconds() / 86400)
        decayed = weight * 0.5 ** (age_days / max(half_life, 0.01))
        # rows of one event share reason, source and (to the second) time
        event = (reason, source, created_at.replace(microsecond=0))
        events[event] = max(events.get(event, 0.0), decayed)
    totals: dict[str, float] = {}
    for (reason, _source, _at), decayed in events.items():
        totals[reason] = totals.get(reason, 0.0) + decayed
    return {reason: round(total, 3) for reason, total in totals.items()}


def signals_clear(keys: Iterable[Key], *, reason: str) -> int:
    """The buyer proved themselves (passed a step-up): the reason's open signals stop
    counting. Returns how many were cleared."""
    keys = _present(keys)
    if not keys:
        return 0
    match = Q()
    for field, value in keys:
        match |= Q(field=field, value=value)
    return Signal.objects.filter(match, reason=reason, cleared_at__isnull=True).update(
        cleared_at=timezone.now()
    )


def sighting_record(user_ref: str, keys: Iterable[Key]) -> None:
    """The account was seen with these keys now (device, ip24, payout): one upsert."""
    now = timezone.now()
    rows = [
        Sighting(user_ref=user_ref[:40], field=field, value=value, last_seen_at=now)
        for field, value in _present(keys)
    ]
    if rows:
        Sighting.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["user_ref", "field", "value"],
            update_fields=["last_seen_at"],
        )


def payout_ref(kind: str, account: str) -> str:
    """A payout account as risk keeps it: a digest (risk needs sameness, not the number)."""
    normal = f"{kind.strip().lower()}:{''.join(account.split()).lower()}"
    return "p-" + hashlib.sha256(normal.encode()).hexdigest()[:32]


def shared_keys(user_ref: str, other_ref: str, keys: Iterable[Key]) -> set[str]:
    """What links two accounts: which of ``keys`` (the first account's, as seen now) the
    other was also seen with, and whether they were ever seen with one payout account —
    e.g. ``{"device", "ip24"}``. One query."""
    return seller_links(user_ref, other_ref, keys)[0]


def seller_links(
    user_ref: str,
    seller_ref: str,
    keys: Iterable[Key],
    *,
    fan_in_since: dt.datetime | None = None,
) -> tuple[set[str], int]:
    """:func:`shared_keys`, and — with ``fan_in_since`` — how many other accounts paid this
    seller's new listings small amounts as young accounts since then (the fan-in count), in
    the same single query: a payment decision stays within its five."""
    keys = _present(keys)
    if not seller_ref or seller_ref == user_ref:
        return set(), 0
    seen_now = "".join("(field = %s AND value = %s) OR " for _ in keys)
    table = Sighting._meta.db_table
    sql = (
        f"SELECT DISTINCT field, 0 FROM {table} WHERE user_ref = %s AND ({seen_now}"  # noqa: S608 -- model metadata and placeholders
        "(field = 'payout' AND value IN"
        f" (SELECT value FROM {table} WHERE user_ref = %s AND field = 'payout')))"
    )
    params: list = [seller_ref, *(part for key in keys for part in key), user_ref]
    if fan_in_since is not None:
        sql += (
            f" UNION ALL SELECT %s, COUNT(DISTINCT user_ref) FROM {Assessment._meta.db_table}"  # noqa: S608 -- model metadata and placeholders
            " WHERE seller_ref = %s AND fan_in = %s AND created_at >= %s AND user_ref <> %s"
        )
        since = connection.ops.adapt_datetimefield_value(fan_in_since)
        params += [_FAN_IN, seller_ref, True, since, user_ref]
    shared, fan_in = set(), 0
    with connection.cursor() as cursor:  # hand-written, as in signal_weights
        cursor.execute(sql, params)
        for field, count in cursor.fetchall():
            if field == _FAN_IN:
                fan_in = int(count or 0)
            else:
                shared.add(field)
    return shared, fan_in

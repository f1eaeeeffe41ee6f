"""What risk remembers between transactions: decaying signals on keys (a channel's risk
decline, a suspicious log-in) and sightings of accounts with devices, address ranges and
payout accounts (what links a buyer to a seller). Each read is one query whatever the
history: signals older than :data:`SIGNAL_HORIZON_DAYS` are never read, and at most
:data:`SIGNAL_ROWS` of the newest are."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import ipaddress
from collections.abc import Iterable
from typing import Any, NamedTuple

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from risk.models import Assessment, Sighting, Signal

SIGNAL_HORIZON_DAYS = 60  # ~ eight half-lives of a week: below 1/256 of its weight
SIGNAL_ROWS = 200

Key = tuple[str, str]  # (field, value), e.g. ("device", "d-…"), ("user", "42")


@functools.lru_cache(maxsize=4096)  # parsing an address costs more than the rest of a key
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
    """The decayed weight per reason over the keys (:func:`keys_parse`)."""
    return read_keys(signal_keys=keys, now=now).weights


class KeyHistory(NamedTuple):
    """What risk remembers about a transaction's keys, read in one query."""

    weights: dict[str, float]  # decayed signal weight per reason
    shared: set[str]  # what the buyer shares with the seller ("device", "ip24", "payout")
    fan_in: int  # other young accounts paying the seller's new listings small amounts


def read_keys(*, now: dt.datetime | None = None, **query: Any) -> KeyHistory:
    """The keys' decaying signals, what ``user_ref`` shares with ``seller_ref`` and — with
    ``fan_in_since`` — the seller's fan-in count since then, in one round trip
    (:func:`keys_query` names the arguments)."""
    now = now or timezone.now()
    statement = keys_query(now=now, **query)
    if statement is None:
        return KeyHistory({}, set(), 0)
    with connection.cursor() as cursor:
        cursor.execute(*statement)
        return keys_parse(cursor.fetchall(), now=now)


def keys_query(
    *,
    now: dt.datetime,
    signal_keys: Iterable[Key] = (),
    more_accounts: tuple[str, list] | None = None,
    user_ref: str = "",
    seller_ref: str = "",
    sighting_keys: Iterable[Key] = (),
    fan_in_since: dt.datetime | None = None,
) -> tuple[str, list] | None:
    """:func:`read_keys`' statement (sql, params), for a caller that sends it beside its own
    reads (a payment decision pipelines it with the buyer's window). ``more_accounts`` is a
    subquery (sql, params) naming more payment accounts to read signals on — the buyer's
    recent ones, which the caller's own tables know. Hand-written: this runs in every payment
    decision, and building the ORM query of an OR of keys costs more than running it
    (bench/risk_bench.py)."""
    branches: list[str] = []
    params: list = []
    signal_keys = _present(signal_keys)
    if signal_keys or more_accounts:
        pairs = ["(field = %s AND value = %s)"] * len(signal_keys)
        params += [part for key in signal_keys for part in key]
        if more_accounts:
            pairs.append(f"(field = 'account' AND value IN ({more_accounts[0]}))")
            params += more_accounts[1]
        # a subquery of its own: a UNION's branch may not carry ORDER BY / LIMIT
        branches.append(
            "SELECT * FROM (SELECT 's' AS kind, reason, source, weight, half_life_days,"  # noqa: S608 -- model metadata and placeholders
            f" created_at FROM {Signal._meta.db_table} WHERE ({' OR '.join(pairs)})"
            " AND created_at >= %s AND cleared_at IS NULL"
            f" ORDER BY created_at DESC LIMIT {SIGNAL_ROWS:d}) AS signals"
        )
        params.append(_horizon(now))
    if seller_ref and seller_ref != user_ref:
        sighting_keys = _present(sighting_keys)
        seen_now = "".join("(field = %s AND value = %s) OR " for _ in sighting_keys)
        table = Sighting._meta.db_table
        branches.append(
            f"SELECT 'l', field, '', 0, 0, NULL FROM {table} WHERE user_ref = %s"  # noqa: S608 -- model metadata and placeholders
            f" AND ({seen_now}(field = 'payout' AND value IN"
            f" (SELECT value FROM {table} WHERE user_ref = %s AND field = 'payout')))"
        )
        params += [seller_ref, *(part for key in sighting_keys for part in key), user_ref]
        if fan_in_since is not None:
            # fan_in as a literal, not a parameter: a prepared statement's generic plan can
            # only use the partial index on fan-in assessments when the query says TRUE
            branches.append(
                "SELECT 'f', '', '', COUNT(DISTINCT user_ref), 0, NULL"  # noqa: S608 -- model metadata and placeholders
                f" FROM {Assessment._meta.db_table} WHERE seller_ref = %s AND fan_in = TRUE"
                " AND created_at >= %s AND user_ref <> %s"
            )
            since = connection.ops.adapt_datetimefield_value(fan_in_since)
            params += [seller_ref, since, user_ref]
    return (" UNION ALL ".join(branches), params) if branches else None


def keys_parse(rows: Iterable[tuple], *, now: dt.datetime) -> KeyHistory:
    """:func:`keys_query`'s rows as a :class:`KeyHistory`: each signal decayed to ``now``,
    the strongest key counting once per reason and source (one decline seen on the buyer,
    their device and their address is one decline, not three)."""
    shared, fan_in = set(), 0
    events: dict[tuple[str, str, dt.datetime], float] = {}
    for kind, name, source, weight, half_life, created_at in rows:
        if kind == "l":
            shared.add(name)
            continue
        if kind == "f":
            fan_in = int(weight or 0)
            continue
        created_at = _aware(created_at)
        age_days = max(0.0, (now - created_at).total_seconds() / 86400)
        decayed = weight * 0.5 ** (age_days / max(half_life, 0.01))
        # rows of one event share reason, source and (to the second) time
        event = (name, source, created_at.replace(microsecond=0))
        events[event] = max(events.get(event, 0.0), decayed)
    totals: dict[str, float] = {}
    for (reason, _source, _at), decayed in events.items():
        totals[reason] = totals.get(reason, 0.0) + decayed
    weights = {reason: round(total, 3) for reason, total in totals.items()}
    return KeyHistory(weights, shared, fan_in)


def _aware(value) -> dt.datetime:
    """A timestamp as the driver gave it (SQLite, through a UNION: naive UTC, maybe text)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return timezone.make_aware(value, dt.UTC) if timezone.is_naive(value) else value


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
    upsert = sighting_upsert(user_ref, keys)
    if upsert:
        with connection.cursor() as cursor:
            cursor.execute(*upsert)


def sighting_upsert(user_ref: str, keys: Iterable[Key]) -> tuple[str, list] | None:
    """:func:`sighting_record`'s statement, to run or to ride along another write; hand-written
    (it runs at every log-in; the ORM's upsert compile costs more than the statement)."""
    keys = _present(keys)
    if not keys:
        return None
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    sql = (
        f"INSERT INTO {Sighting._meta.db_table} (user_ref, field, value, last_seen_at) VALUES "  # noqa: S608 -- model metadata and placeholders
        + ", ".join(["(%s, %s, %s, %s)"] * len(keys))
        + " ON CONFLICT (user_ref, field, value) DO UPDATE SET last_seen_at = excluded.last_seen_at"
    )
    return sql, [part for field, value in keys for part in (user_ref[:40], field, value, now)]


def payout_ref(kind: str, account: str) -> str:
    """A payout account as risk keeps it: a digest (risk needs sameness, not the number)."""
    normal = f"{kind.strip().lower()}:{''.join(account.split()).lower()}"
    return "p-" + hashlib.sha256(normal.encode()).hexdigest()[:32]


def shared_keys(user_ref: str, other_ref: str, keys: Iterable[Key]) -> set[str]:
    """What links two accounts: which of ``keys`` (the first account's, as seen now) the
    other was also seen with, and whether they were ever seen with one payout account —
    e.g. ``{"device", "ip24"}``. One query."""
    return read_keys(user_ref=user_ref, seller_ref=other_ref, sighting_keys=keys).shared

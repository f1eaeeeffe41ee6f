"""Log-ins scored by the same engine as payments (lists, staff rules, decision bands): a new
device, a region the account never used, a burst of log-ins across accounts from one
address. A suspicious log-in (challenge or worse) leaves a signal on the account, so its
next payment steps up, and its owner is told by e-mail. The log-in is never refused here:
the password was right, and the owner decides (the sessions page ends the others)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.core.mail import send_mail
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from risk import engine, history, sql
from risk.models import Decision, Login

LOGIN_WINDOW = 200  # the account's latest log-ins read: constant cost whatever the history
BURST_ACCOUNTS = 5  # other accounts logged in from one address within the hour
SUSPICION_HALF_LIFE_DAYS = 1.0


@dataclass(frozen=True)
class LoginFacts:
    """A log-in as the web layer saw it; ``region`` is an ISO country code ('' unknown)."""

    user_ref: str
    email: str = ""
    session_key: str = ""
    device: str = ""
    device_label: str = ""
    ip: str = ""
    region: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _features(facts: LoginFacts, *, now: dt.datetime) -> dict[str, Any]:
    """One query: the account's latest log-ins and, in a row of its own, the address's other
    accounts this hour."""
    table = Login._meta.db_table
    statement = (  # hand-written: runs at every log-in (bench/risk_bench.py)
        f"SELECT * FROM (SELECT 1, device, region, 0 FROM {table} WHERE user_ref = %s"  # noqa: S608 -- model metadata and placeholders
        f" ORDER BY created_at DESC LIMIT {LOGIN_WINDOW:d}) AS past"
    )
    params: list = [facts.user_ref]
    if facts.ip:
        statement += (
            f" UNION ALL SELECT 0, NULL, NULL, COUNT(DISTINCT user_ref) FROM {table}"  # noqa: S608 -- model metadata and placeholders
            " WHERE ip = %s AND created_at >= %s AND user_ref <> %s"
        )
        hour_ago = connection.ops.adapt_datetimefield_value(now - dt.timedelta(hours=1))
        params += [facts.ip, hour_ago, facts.user_ref]
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        rows = cursor.fetchall()
    past = [(device, region) for is_past, device, region, _ in rows if is_past == 1]
    others = next((int(count) for is_past, _, _, count in rows if is_past == 0), 0)
    devices = {device for device, _region in past if device}
    regions = {region for _device, region in past if region}
    return {
        "login_known_account": bool(past),
        "login_new_device": bool(past) and bool(facts.device) and facts.device not in devices,
        "login_new_region": bool(regions) and bool(facts.region) and facts.region not in regions,
        "login_region": facts.region,
        "login_ip_accounts_1h": others,
        **facts.extra,
    }


def _builtin(f: dict[str, Any]) -> list[tuple[int, str]]:
    hits: list[tuple[int, str]] = []
    if f["login_new_device"]:
        hits.append((40, "login_new_device"))
    if f["login_new_region"]:
        hits.append((40, "login_new_region"))
    if f["login_ip_accounts_1h"] >= 2 * BURST_ACCOUNTS:
        hits.append((80, "login_ip_burst"))
    elif f["login_ip_accounts_1h"] >= BURST_ACCOUNTS:
        hits.append((50, "login_ip_burst"))
    return hits


@transaction.atomic  # the log-in, its sightings and its signal: one commit
def login_assess(facts: LoginFacts) -> Login:
    """Score and record a log-in; a suspicious one marks the account and mails its owner."""
    now = timezone.now()
    f = _features(facts, now=now)
    lists = (("user", facts.user_ref), ("ip", facts.ip), ("device", facts.device))
    result = engine.decide(
        f, _builtin(f), lists=lists, subject="login", user_ref=facts.user_ref, store=False
    )
    row = {
        "user_ref": facts.user_ref[:40],
        "session_key": facts.session_key[:40],
        "device": facts.device[:120],
        "device_label": facts.device_label[:255],
        "ip": facts.ip[:45],
        "region": facts.region[:8],
        "score": result.score,
        "decision": result.decision,
        "reasons": list(result.reasons),
        "created_at": now,
    }
    seen = history.sighting_upsert(
        facts.user_ref, [("device", facts.device), ("ip24", history.ip_range(facts.ip))]
    )
    login = Login(pk=sql.insert_returning_id(Login, row, before=seen), **row)  # no save() hooks
    if result.decision != Decision.ALLOW:
        history.signal_record(
            [("user", facts.user_ref)],
            reason=engine.SUSPICIOUS_LOGIN,
            source=f"login:{login.pk}",
            half_life_days=SUSPICION_HALF_LIFE_DAYS,
        )
        if facts.email:
            _mail_owner(facts, login)
    return login


def _mail_owner(facts: LoginFacts, login: Login) -> None:
    reasons = {
        "login_new_device": _("a device this account never used"),
        "login_new_region": _("a region this account never used"),
        "login_ip_burst": _("an address many accounts logged in from"),
    }
    why = ", ".join(str(reasons.get(code, code)) for code in login.reasons)
    body = _(
        "Your Cardex account was just logged in to from %(why)s.\n"
        "Device: %(device)s\nRegion: %(region)s\nTime: %(time)s\n\n"
        "If this was you, nothing to do: your next payment asks for a one-time code.\n"
        "If not, change your password and end the other sessions on your account's "
        "sessions page."
    ) % {
        "why": why or _("an unusual place"),
        "device": login.device_label or _("unknown"),
        "region": login.region or _("unknown"),
        "time": timezone.localtime(login.created_at).strftime("%Y-%m-%d %H:%M"),
    }
    email = facts.email
    transaction.on_commit(
        lambda: send_mail(
            _("New log-in to your Cardex account"), body, None, [email], fail_silently=True
        )
    )


def open_sessions(user_ref: str, *, limit: int = 20) -> list[Login]:
    """The account's recent log-ins whose session is still alive, newest first."""
    from django.contrib.sessions.models import Session

    logins = list(
        Login.objects.filter(user_ref=user_ref, ended_at__isnull=True).order_by("-created_at")[
            :limit
        ]
    )
    alive = set(
        Session.objects.filter(
            session_key__in=[login.session_key for login in logins if login.session_key],
            expire_date__gt=timezone.now(),
        ).values_list("session_key", flat=True)
    )
    return [login for login in logins if login.session_key in alive]

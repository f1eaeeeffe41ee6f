"""Risk's state-changing services: what other apps ask risk to record."""

from __future__ import annotations

from django.contrib.sessions.models import Session
from django.utils import timezone

from risk import engine, history
from risk.logins import LoginFacts, login_assess
from risk.models import Assessment, Decision, Login

CHANNEL_DECLINE_HALF_LIFE_DAYS = 7.0
#: a chargeback weighs for months: banks take weeks to rule, fraudsters come back
CHARGEBACK_HALF_LIFE_DAYS = 30.0


def assessment_review_record(*, assessment_id: int, reviewer: str, approve: bool) -> int:
    """Record an analyst's decision on an assessment held for review (who, and what: allow or
    block). Returns how many assessments were updated (0 for an unknown id)."""
    return Assessment.objects.filter(pk=assessment_id).update(
        reviewed_by=reviewer[:150], review_outcome=Decision.ALLOW if approve else Decision.BLOCK
    )


def channel_risk_decline_record(
    *, user_ref: str, device: str = "", ip: str = "", account_ref: str = "", source: str
) -> int:
    """A channel declined a payment for risk (``source`` = ``<backend>:<code>``): a signal on
    the buyer, the device, the address and the payment account, halving every week, so the
    next attempt through any channel steps up. Returns how many keys were marked."""
    if not user_ref or not source:
        raise ValueError("a channel risk decline needs the buyer and its source")
    return history.signal_record(
        [("user", user_ref), ("device", device), ("ip", ip), ("account", account_ref)],
        reason=engine.CHANNEL_RISK_DECLINE,
        source=source,
        half_life_days=CHANNEL_DECLINE_HALF_LIFE_DAYS,
    )


def chargeback_record(
    *,
    user_ref: str,
    device: str = "",
    ip: str = "",
    account_ref: str = "",
    source: str,
    lost: bool = False,
) -> int:
    """A channel opened a dispute on the buyer's payment (``lost``: and the buyer won it): a
    signal on the buyer, the device, the address and the payment account, halving monthly.
    An opened and a lost dispute are two signals, so a lost one weighs twice. Returns how many
    keys were marked."""
    if not user_ref or not source:
        raise ValueError("a chargeback needs the buyer and its source")
    return history.signal_record(
        [("user", user_ref), ("device", device), ("ip", ip), ("account", account_ref)],
        reason=engine.CHARGEBACK,
        source=f"{source}:lost" if lost else source,
        half_life_days=CHARGEBACK_HALF_LIFE_DAYS,
    )


def login_suspicion_clear(*, user_ref: str) -> int:
    """The owner passed a step-up: a suspicious log-in stops stepping their payments up."""
    return history.signals_clear([("user", user_ref)], reason=engine.SUSPICIOUS_LOGIN)


def sighting_record(
    *, user_ref: str, device: str = "", ip: str = "", payout: tuple[str, str] | None = None
) -> None:
    """The account was seen with a device, an address or a payout account (``(kind,
    account)``, kept as a digest): what the self-dealing features compare."""
    if not user_ref:
        raise ValueError("a sighting needs the account")
    payout_key = history.payout_ref(*payout) if payout and payout[1].strip() else ""
    history.sighting_record(
        user_ref, [("device", device), ("ip24", history.ip_range(ip)), ("payout", payout_key)]
    )


def sessions_end_others(*, user_ref: str, keep_session_key: str) -> int:
    """End every other open session of the account (its log-ins' sessions); returns how
    many were still alive and are now ended."""
    others = Login.objects.filter(user_ref=user_ref, ended_at__isnull=True).exclude(
        session_key=keep_session_key
    )
    keys = [key for key in others.values_list("session_key", flat=True) if key]
    ended, _ = Session.objects.filter(session_key__in=keys).delete()
    others.update(ended_at=timezone.now())
    return ended


__all__ = [
    "LoginFacts",
    "assessment_review_record",
    "channel_risk_decline_record",
    "chargeback_record",
    "login_assess",
    "login_suspicion_clear",
    "sessions_end_others",
    "sighting_record",
]

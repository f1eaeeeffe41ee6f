"""Risk before any channel is asked (DESIGN.md §6): the facts risk scores, its decision
applied to the payment, and the one-time codes of a challenge (by e-mail, else by SMS). A
channel's risk decline is handed back to risk here too (a receiver of ``payment_failed``,
connected when the services are imported), so the next attempt anywhere is scored with it."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext as _

from payments import signals
from payments.channels import registry
from payments.models import Attempt, ChannelAccount, Payment
from payments.payables import PayableFacts
from payments.services import transitions
from payments.services.common import CENT
from payments.states import PaymentStatus
from risk import engine, history, sms
from risk import services as risk_services
from risk import sql as risk_sql

CHALLENGE_TRIES = 5
PAID = frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED})
HISTORY_WINDOW = 50  # the buyer's latest payments risk reads: constant cost, whatever the history

# The channels' own risk declines (their error tables call them "final", like a buyer's
# empty balance; these are the ones that say the channel suspected fraud). Fed to risk as
# signals on the buyer, the device, the address and the payment account.
CHANNEL_RISK_DECLINES: frozenset[tuple[str, str]] = frozenset(
    {
        ("alipay", "ACQ.PAYMENT_REQUEST_HAS_RISK"),
        ("card", "fraudulent"),
        ("card", "stolen_card"),
        ("card", "lost_card"),
        ("card", "payment_intent_authentication_failure"),  # 3-D Secure failed
        ("paypal", "TRANSACTION_REFUSED"),
        ("paypal", "COMPLIANCE_VIOLATION"),
        ("ecny", "RISK_REJECT"),
        ("wechatpay", "TRADE_ERROR"),
        ("unionpay", "38"),
    }
)


#: ``risk["challenge"]["by"]`` of a challenge the card channel runs as 3-D Secure
THREE_D_SECURE = "three_d_secure"


def three_d_secure_available(method: str) -> bool:
    """Whether every enabled account that routing may pick for ``method`` runs on a channel
    that can be asked for 3-D Secure (the card channel), so risk's challenge can be the
    issuer's step-up instead of our code. One small query, only for challenged payments."""
    backends = {
        backend
        for backend, methods in ChannelAccount.objects.filter(enabled=True).values_list(
            "backend", "methods"
        )
        if method in (methods or ())
    }
    if not backends:
        return False
    for backend in backends:
        try:
            if not registry.backend_class(backend).supports_three_d_secure:
                return False
        except LookupError:
            return False
    return True


def three_d_secure_requested(payment: Payment) -> bool:
    """Risk challenged this payment and left the challenge to the channel's 3-D Secure."""
    return (payment.risk or {}).get("challenge", {}).get("by") == THREE_D_SECURE


def risk_assess(payment: Payment, facts: PayableFacts) -> str:
    """Score the payment and hold, challenge or block it as risk decides. Returns
    allow/challenge/review/block; a challenged card payment is not held but marked for
    3-D Secure (:func:`three_d_secure_requested`) and opened by the caller."""
    with transaction.atomic():  # the assessment is stored with the decision: one commit
        result = risk_decision(payment, facts)
        risk = {
            "score": result.score,
            "decision": result.decision,
            "reasons": list(result.reasons),
            "assessment_id": result.assessment_id,
        }
        if result.decision == "allow":
            # nothing moves: one UPDATE, no lock read (the payment is this request's own and
            # not yet at any channel)
            payment.risk, payment.updated_at = risk, timezone.now()
            Payment.objects.filter(pk=payment.pk).update(risk=risk, updated_at=payment.updated_at)
            return result.decision
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if result.decision == "block":
            transitions.apply(
                payment,
                "block",
                risk=risk,
                failure_code="RISK_BLOCKED",
                failure_reason=_("This payment cannot be accepted."),
                failure_guidance=_("Contact support if you think this is a mistake."),
            )
        elif result.decision == "review":
            transitions.apply(payment, "hold", risk=risk)
        elif result.decision == "challenge" and three_d_secure_available(payment.method):
            # A card payment steps up at the card channel: the issuer's 3-D Secure instead
            # of our code; the payment opens now and passes once the issuer authenticates.
            risk["challenge"] = {"by": THREE_D_SECURE, "requested_at": timezone.now().isoformat()}
            payment.risk = risk
            payment.save(update_fields=["risk", "updated_at"])
        elif result.decision == "challenge":
            code = _new_code()
            risk["challenge"] = {
                "digest": challenge_digest(payment, code),
                "tries": 0,
                "sent_at": timezone.now().isoformat(),
            }
            transitions.apply(payment, "challenge", risk=risk)
            challenge_send(payment, code)
    return result.decision


def device_key(client: dict) -> str:
    """Risk's "device": the first-party device id (config/device.py), else — for clients
    that keep no cookies (API tokens) and payments stored before the id existed — a digest
    of the user agent."""
    if client.get("device_id"):
        return str(client["device_id"])
    agent = client.get("user_agent", "")
    return "ua-" + hashlib.sha256(agent.encode()).hexdigest()[:24] if agent else ""


def risk_decision(payment: Payment, facts: PayableFacts) -> engine.RiskResult:
    """Risk's decision on the payment, its reads in one round trip on PostgreSQL: the
    buyer's window and what risk remembers of the keys are sent together (pipelined, with
    the transaction's BEGIN), then the assessment is stored. Inside a transaction."""
    now = timezone.now()
    # what the key read needs (keys, seller, ages) is known before the window is read; the
    # buyer's recent payment accounts come from a subquery of the same window
    before = _facts(payment, facts, window=BuyerWindow(), now=now)
    window_query = _buyer_window_query(payment, now=now)
    keys_query = engine.key_history_query(before, now=now, more_accounts=_past_accounts(payment))
    with risk_sql.pipeline(), connection.cursor() as window_cursor, connection.cursor() as keys:
        window_cursor.execute(*window_query)
        if keys_query:
            keys.execute(*keys_query)
        window = _buyer_window_parse(window_cursor.fetchall(), payment)
        key_rows = keys.fetchall() if keys_query else []
    return engine.assess(
        _facts(payment, facts, window=window, now=now),
        known=history.keys_parse(key_rows, now=now),
    )


def _facts(
    payment: Payment,
    facts: PayableFacts,
    *,
    window: BuyerWindow | None = None,
    now: dt.datetime | None = None,
) -> engine.TransactionFacts:
    """What risk sees: the buyer's latest payments on the platform (at most
    :data:`HISTORY_WINDOW`) summed up with the address's payments of the last hour — read
    here in one query unless given — and what the shop knows."""
    now = now or timezone.now()
    if window is None:
        with connection.cursor() as cursor:
            cursor.execute(*_buyer_window_query(payment, now=now))
            window = _buyer_window_parse(cursor.fetchall(), payment)
    client = payment.client or {}
    ip, device = client.get("ip", ""), device_key(client)
    account_age = (now - payment.buyer.date_joined).days
    paid = window.paid_count
    return engine.TransactionFacts(
        subject=f"payment:{payment.public_id}",
        user_ref=str(payment.buyer_id),
        amount=payment.amount,
        method=payment.method,
        ip=ip,
        device=device,
        email=payment.buyer.email,
        account_age_days=account_age if facts.account_age_days is None else facts.account_age_days,
        good_orders=paid if facts.good_orders is None else facts.good_orders,
        disputes=facts.disputes,
        average_amount=(window.paid_total / paid).quantize(CENT)
        if paid and window.paid_total
        else None,
        user_payments_last_hour=window.last_hour,
        ip_payments_last_hour=window.ip_last_hour,
        new_device=bool(device) and paid > 0 and not window.paid_same_device,
        new_ip=bool(ip) and paid > 0 and not window.paid_same_ip,
        brand_high_risk=facts.brand_high_risk,
        seller_linked=facts.seller_linked,
        seller_ref="" if facts.seller_id is None else str(facts.seller_id),
        listing_age_days=facts.listing_age_days,
        account_ref=client.get("account_ref", ""),
        past_account_refs=window.account_refs,
    )


@dataclass(frozen=True)
class BuyerWindow:
    """The buyer's latest :data:`HISTORY_WINDOW` payments as risk counts them."""

    last_hour: int = 0  # of the window, made in the last hour
    paid_count: int = 0
    paid_total: Decimal = Decimal(0)
    paid_same_device: int = 0  # paid ones from this payment's device
    paid_same_ip: int = 0  # … and from its address
    ip_last_hour: int = 0  # anyone's payments from this address in the last hour
    account_refs: tuple[str, ...] = ()  # the accounts at the channels paid with, newest first


def _client_key(name: str) -> str:
    """A key of a payment's stored client record, as text, in this database's SQL."""
    if connection.vendor == "postgresql":
        return f"client->>'{name}'"
    return f"json_extract(client, '$.{name}')"


def _window_sql(columns: str) -> str:
    """The buyer's latest :data:`HISTORY_WINDOW` payments but this one, newest first, read
    off the ``payment_buyer_recent`` index (params: buyer id, payment id). The window's size
    is written into the statement, not bound: the generic plan PostgreSQL keeps for a
    prepared statement then knows it reads fifty rows off the index, not a share of them."""
    return (
        f"SELECT {columns} FROM {Payment._meta.db_table}"  # noqa: S608 -- model metadata and placeholders
        f" WHERE buyer_id = %s AND id <> %s ORDER BY created_at DESC LIMIT {HISTORY_WINDOW:d}"
    )


def _buyer_window_query(payment: Payment, *, now: dt.datetime) -> tuple[str, list]:
    """The buyer's window (:func:`_window_sql`) summed up in the database, in one statement:
    one row of counts (the address's last hour on the created_at index rides as a scalar
    subquery) plus one row per channel account the window paid with. Hand-written: it runs
    at every payment and the ORM's compile cost more than the query; summing in SQL spares
    parsing fifty rows per decision (bench/risk_bench.py)."""
    table, key = Payment._meta.db_table, _client_key
    client = payment.client or {}
    if client.get("device_id"):  # device_key's two kinds of device, compared in SQL
        same_device, device_param = "device_id = %s", str(client["device_id"])
    else:
        same_device = "COALESCE(device_id, '') = '' AND agent = %s"
        device_param = client.get("user_agent", "")
    ip = client.get("ip", "")
    paid = "status IN (" + ", ".join(["%s"] * len(PAID)) + ")"
    since = connection.ops.adapt_datetimefield_value(now - dt.timedelta(hours=1))
    window = _window_sql(
        f"status, amount, created_at, {key('ip')} AS ip, {key('device_id')} AS device_id,"
        f" {key('user_agent')} AS agent, {key('account_ref')} AS account_ref"
    )
    sql = (
        f"WITH window_ AS ({window})"  # noqa: S608 -- model metadata and placeholders
        " SELECT 1, SUM(CASE WHEN created_at >= %s THEN 1 ELSE 0 END),"
        f" SUM(CASE WHEN {paid} THEN 1 ELSE 0 END),"
        f" SUM(CASE WHEN {paid} THEN amount ELSE 0 END),"
        f" SUM(CASE WHEN {paid} AND {same_device} THEN 1 ELSE 0 END),"
        f" SUM(CASE WHEN {paid} AND ip = %s THEN 1 ELSE 0 END),"
        f" (SELECT COUNT(*) FROM {table} WHERE created_at >= %s AND {key('ip')} = %s"
        " AND id <> %s), NULL, NULL FROM window_"
        " UNION ALL SELECT 2, NULL, NULL, NULL, NULL, NULL, NULL, account_ref, MAX(created_at)"
        " FROM window_ WHERE COALESCE(account_ref, '') <> '' GROUP BY account_ref"
    )
    statuses = [str(status) for status in sorted(PAID)]
    params = [payment.buyer_id, payment.pk, since, *statuses, *statuses]
    params += [*statuses, device_param, *statuses, ip, since, ip, payment.pk]
    return sql, params


def _buyer_window_parse(rows: list[tuple], payment: Payment) -> BuyerWindow:
    client = payment.client or {}
    has_device = bool(client.get("device_id") or client.get("user_agent"))
    has_ip = bool(client.get("ip"))
    counts = next(row for row in rows if row[0] == 1)
    accounts = sorted((row for row in rows if row[0] == 2), key=lambda row: row[8], reverse=True)
    total = counts[3] or 0
    return BuyerWindow(
        last_hour=int(counts[1] or 0),
        paid_count=int(counts[2] or 0),
        paid_total=total if isinstance(total, Decimal) else Decimal(str(total)),
        paid_same_device=int(counts[4] or 0) if has_device else 0,
        paid_same_ip=int(counts[5] or 0) if has_ip else 0,
        ip_last_hour=int(counts[6] or 0) if has_ip else 0,
        account_refs=tuple(row[7] for row in accounts),
    )


def _past_accounts(payment: Payment) -> tuple[str, list]:
    """A subquery naming the payment accounts of the buyer's window, newest first (as
    :class:`BuyerWindow` reads them), for risk to read their signals in its own query."""
    window = _window_sql(f"{_client_key('account_ref')} AS account_ref, created_at")
    sql = (
        f"SELECT account_ref FROM ({window}) AS window_"  # noqa: S608 -- model metadata and placeholders
        " WHERE COALESCE(account_ref, '') <> '' GROUP BY account_ref"
        f" ORDER BY MAX(created_at) DESC LIMIT {engine.SIGNAL_ACCOUNTS:d}"
    )
    return sql, [payment.buyer_id, payment.pk]


@receiver(signals.payment_failed, sender=Payment, dispatch_uid="payments.risk.channel_decline")
def channel_risk_decline_record(sender, payment: Payment, **kwargs) -> None:
    """A channel declined the payment for risk: tell risk, so the buyer's next attempt
    through any channel is scored with it. Runs inside the failing transaction."""
    attempt = (
        Attempt.objects.filter(payment=payment, error_code=payment.failure_code)
        .select_related("account")
        .order_by("-pk")
        .first()
    )
    if attempt is None:
        return
    if (attempt.account.backend, attempt.error_code) not in CHANNEL_RISK_DECLINES:
        return
    client = payment.client or {}
    risk_services.channel_risk_decline_record(
        user_ref=str(payment.buyer_id),
        device=device_key(client),
        ip=client.get("ip", ""),
        account_ref=client.get("account_ref", ""),
        source=f"{attempt.account.backend}:{attempt.error_code}",
    )


def challenge_digest(payment: Payment, code: str) -> str:
    secret = f"{payment.public_id}:{code}:{settings.SECRET_KEY}"
    return hashlib.sha256(secret.encode()).hexdigest()


def challenge_step_up(payment: Payment) -> None:
    """The channel asked for stronger authentication: challenge the buyer with a code."""
    code = _new_code()
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        challenge = {"digest": challenge_digest(locked, code), "tries": 0, "by": "channel"}
        transitions.apply(locked, "challenge", risk={**locked.risk, "challenge": challenge})
        challenge_send(locked, code)


def challenge_check(payment: Payment, code: str) -> bool:
    """Check a typed code against the payment's challenge, under the payment's lock; a wrong
    one counts, and the last allowed wrong one blocks the payment."""
    challenge = dict(payment.risk.get("challenge") or {})
    challenge["tries"] = int(challenge.get("tries", 0)) + 1
    good = secrets.compare_digest(
        challenge.get("digest", ""), challenge_digest(payment, code.strip())
    )
    if good:
        challenge["passed_at"] = timezone.now().isoformat()
        transitions.apply(payment, "release", risk={**payment.risk, "challenge": challenge})
        # the owner proved themselves: a suspicious log-in no longer steps their payments up
        risk_services.login_suspicion_clear(user_ref=str(payment.buyer_id))
    elif challenge["tries"] >= CHALLENGE_TRIES:
        transitions.apply(
            payment,
            "block",
            risk={**payment.risk, "challenge": challenge},
            failure_code="CHALLENGE_FAILED",
            failure_reason=_("Too many wrong codes."),
        )
    else:
        payment.risk = {**payment.risk, "challenge": challenge}
        payment.save(update_fields=["risk", "updated_at"])
    return good


def challenge_send(payment: Payment, code: str) -> None:
    """Send the code once the challenge is committed: by e-mail, or by SMS to a buyer with
    no e-mail address but a phone number (risk/sms.py), so everyone can pass a challenge."""
    text = _(
        "Your one-time code is %(code)s. It confirms a payment of %(amount)s %(currency)s."
    ) % {"code": code, "amount": payment.amount, "currency": payment.currency}
    email, phone = payment.buyer.email, getattr(payment.buyer, "phone", "")
    if email:
        transaction.on_commit(
            lambda: send_mail(
                _("Your Cardex verification code"), text, None, [email], fail_silently=True
            )
        )
    elif sms.phone_number(phone):
        transaction.on_commit(lambda: sms.sms_send_quietly(phone, f"[Cardex] {text}"))


def _new_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"

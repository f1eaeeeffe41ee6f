"""Risk before any channel is asked (DESIGN.md §6): the facts risk scores, its decision
applied to the payment, and the one-time codes of a challenge (by e-mail, else by SMS). A
channel's risk decline is handed back to risk here too (a receiver of ``payment_failed``,
connected when the services are imported), so the next attempt anywhere is scored with it."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
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
from risk import engine, sms
from risk import services as risk_services

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
        result = engine.assess(_facts(payment, facts))
        risk = {
            "score": result.score,
            "decision": result.decision,
            "reasons": list(result.reasons),
            "assessment_id": result.assessment_id,
        }
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
        else:
            payment.risk = risk
            payment.save(update_fields=["risk", "updated_at"])
    return result.decision


def device_key(client: dict) -> str:
    """Risk's "device": the first-party device id (config/device.py), else — for clients
    that keep no cookies (API tokens) and payments stored before the id existed — a digest
    of the user agent."""
    if client.get("device_id"):
        return str(client["device_id"])
    agent = client.get("user_agent", "")
    return "ua-" + hashlib.sha256(agent.encode()).hexdigest()[:24] if agent else ""


def _facts(payment: Payment, facts: PayableFacts) -> engine.TransactionFacts:
    """What risk sees: the buyer's latest payments on the platform (at most
    :data:`HISTORY_WINDOW` rows) and the address's payments of the last hour, both in one
    query, and what the shop knows."""
    now = timezone.now()
    hour_ago = now - dt.timedelta(hours=1)
    client = payment.client or {}
    ip, device = client.get("ip", ""), device_key(client)
    recent, ip_payments = _recent_payments(
        payment.buyer_id, exclude_pk=payment.pk, ip=ip, since=hour_ago
    )
    paid_count, total, last_hour, paid_same_device, paid_same_ip = 0, Decimal(0), 0, 0, 0
    accounts: dict[str, None] = {}  # the buyer's accounts at the channels, newest first
    for status, amount, created_at, past_client in recent:  # ≤ HISTORY_WINDOW small rows
        last_hour += created_at >= hour_ago
        if (past_client or {}).get("account_ref"):
            accounts[past_client["account_ref"]] = None
        if status in PAID:
            past_client = past_client or {}
            paid_count += 1
            total += amount
            paid_same_device += bool(device) and device_key(past_client) == device
            paid_same_ip += bool(ip) and past_client.get("ip") == ip
    account_age = (now - payment.buyer.date_joined).days
    return engine.TransactionFacts(
        subject=f"payment:{payment.public_id}",
        user_ref=str(payment.buyer_id),
        amount=payment.amount,
        method=payment.method,
        ip=ip,
        device=device,
        email=payment.buyer.email,
        account_age_days=account_age if facts.account_age_days is None else facts.account_age_days,
        good_orders=paid_count if facts.good_orders is None else facts.good_orders,
        disputes=facts.disputes,
        average_amount=(total / paid_count).quantize(CENT) if paid_count and total else None,
        user_payments_last_hour=last_hour,
        ip_payments_last_hour=ip_payments,
        new_device=bool(device) and paid_count > 0 and not paid_same_device,
        new_ip=bool(ip) and paid_count > 0 and not paid_same_ip,
        brand_high_risk=facts.brand_high_risk,
        seller_linked=facts.seller_linked,
        seller_ref="" if facts.seller_id is None else str(facts.seller_id),
        listing_age_days=facts.listing_age_days,
        account_ref=client.get("account_ref", ""),
        past_account_refs=tuple(accounts),
    )


# What a past payment's client tells risk (device_key, the address, the channel account).
CLIENT_KEYS = ("ip", "device_id", "user_agent", "account_ref")


def _recent_payments(
    buyer_id: int, *, exclude_pk: int, ip: str, since: dt.datetime
) -> tuple[list[tuple], int]:
    """(status, amount, created_at, client) of the buyer's latest :data:`HISTORY_WINDOW`
    payments, newest first (on the ``payment_buyer_recent`` index), and the number of the
    address's payments since ``since`` (on the created_at index), in one round trip: the
    count is a row of its own beside the window's. Hand-written: it runs at every payment
    and the ORM's compile of it cost more than the query (bench/risk_bench.py)."""
    table = Payment._meta.db_table
    address = (
        "client->>'ip'" if connection.vendor == "postgresql" else "json_extract(client, '$.ip')"
    )
    if connection.vendor == "postgresql":
        key = "client->>'{}'".format  # the client keys risk reads, as text
    else:
        key = "json_extract(client, '$.{}')".format
    # Only the client keys risk reads: the stored client also holds the ranking the buyer was
    # shown (a few KB), which would otherwise be parsed fifty times per decision.
    keys = ", ".join(key(name) for name in CLIENT_KEYS)
    nulls = ", ".join("NULL" for _ in CLIENT_KEYS)
    sql = (
        f"SELECT 1, status, amount, created_at, {keys}, 0 FROM {table}"  # noqa: S608 -- model metadata and placeholders
        f" WHERE id IN (SELECT id FROM {table} WHERE buyer_id = %s AND id <> %s"
        " ORDER BY created_at DESC LIMIT %s)"
        f" UNION ALL SELECT 0, NULL, NULL, NULL, {nulls},"
        f" (SELECT COUNT(*) FROM {table} WHERE created_at >= %s AND {address} = %s"
        " AND id <> %s)"
    )
    params = [buyer_id, exclude_pk, HISTORY_WINDOW]
    params += [connection.ops.adapt_datetimefield_value(since), ip, exclude_pk]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    ip_payments = next((row[-1] for row in rows if row[0] == 0), 0) if ip else 0
    window = [
        (
            row[1],
            row[2] if isinstance(row[2], Decimal) else Decimal(str(row[2])),
            _aware(row[3]),
            {name: value for name, value in zip(CLIENT_KEYS, row[4:-1], strict=True) if value},
        )
        for row in rows
        if row[0] == 1
    ]
    window.sort(key=lambda row: row[2], reverse=True)  # a UNION's row order is not promised
    return window, ip_payments


def _aware(value) -> dt.datetime:
    """A timestamp as the database driver gave it (SQLite: naive UTC text) made aware."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if timezone.is_aware(value) else timezone.make_aware(value, dt.UTC)


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

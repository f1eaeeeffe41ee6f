"""Risk before any channel is asked (DESIGN.md §6): the facts risk scores, its decision
applied to the payment, and the one-time codes of a challenge."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from payments.models import Payment
from payments.payables import PayableFacts
from payments.services import transitions
from payments.services.common import CENT
from payments.states import PaymentStatus
from risk import engine

CHALLENGE_TRIES = 5


def risk_assess(payment: Payment, facts: PayableFacts) -> str:
    """Score the payment and hold, challenge or block it as risk decides. Returns
    allow/challenge/review/block."""
    result = engine.assess(_facts(payment, facts))
    risk = {
        "score": result.score,
        "decision": result.decision,
        "reasons": list(result.reasons),
        "assessment_id": result.assessment_id,
    }
    with transaction.atomic():
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


def _facts(payment: Payment, facts: PayableFacts) -> engine.TransactionFacts:
    """What risk sees: the buyer's history on the platform, and what the shop knows."""
    history = Payment.objects.filter(buyer=payment.buyer).exclude(pk=payment.pk)
    hour_ago = timezone.now() - dt.timedelta(hours=1)
    ip, device = payment.client.get("ip", ""), payment.client.get("user_agent", "")
    paid = history.filter(status__in=[PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED])
    total = paid.aggregate(s=Sum("amount"))["s"]
    paid_count = paid.count()
    ip_payments = 0
    if ip:
        ip_payments = (
            Payment.objects.filter(created_at__gte=hour_ago, client__ip=ip)
            .exclude(pk=payment.pk)
            .count()
        )
    account_age = (timezone.now() - payment.buyer.date_joined).days
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
        user_payments_last_hour=history.filter(created_at__gte=hour_ago).count(),
        ip_payments_last_hour=ip_payments,
        new_device=(
            bool(device) and paid_count > 0 and not paid.filter(client__user_agent=device).exists()
        ),
        new_ip=bool(ip) and paid_count > 0 and not paid.filter(client__ip=ip).exists(),
        brand_high_risk=facts.brand_high_risk,
        seller_linked=facts.seller_linked,
        seller_ref="" if facts.seller_id is None else str(facts.seller_id),
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
    """Mail the code once the challenge is committed."""
    email = payment.buyer.email
    if not email:
        return
    transaction.on_commit(
        lambda: send_mail(
            _("Your Cardex verification code"),
            _("Your one-time code is %(code)s. It confirms a payment of %(amount)s %(currency)s.")
            % {"code": code, "amount": payment.amount, "currency": payment.currency},
            None,
            [email],
            fail_silently=True,
        )
    )


def _new_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"

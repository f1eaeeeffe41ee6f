"""The buyer's pages at the acquirer: the hosted card form (Stripe's test cards pick the
outcome) and the 3-D Secure challenge."""

from __future__ import annotations

import hmac
import re
from decimal import Decimal
from urllib.parse import urlencode

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt

from payments.sandbox import core
from payments.sandbox.card.protocol import (
    CHANNEL,
    random_token,
)
from payments.sandbox.card.state import (
    intent_status,
    wants_three_d_secure,
)
from payments.sandbox.models import (
    SandboxTrade,
)

THREE_DS_THRESHOLD = Decimal("1000.00")

#: Stripe's test card numbers → the decline key they trigger (None: pays).
TEST_CARDS: dict[str, str | None] = {
    "4242424242424242": None,
    "5555555555554444": None,
    "4000000000003220": None,
    "4000002760003184": None,
    "4000000000009995": "insufficient_funds",
    "4000000000000002": "generic_decline",
    "4000000000000069": "expired_card",
    "4000000000000127": "incorrect_cvc",
    "4000000000000119": "processing_error",
    "4100000000000019": "risk",
}
ALWAYS_3DS = frozenset({"4000000000003220", "4000002760003184"})


# ---------------------------------------------------------------------------------------------
# The buyer's pages: hosted card form and 3-D Secure challenge


# The PaymentIntent's status as the payer reads it on the simulated page.
INTENT_STATUS_LABELS = {
    "requires_payment_method": gettext_lazy("waiting for the card"),
    "requires_action": gettext_lazy("waiting for 3-D Secure"),
    "succeeded": gettext_lazy("paid"),
    "canceled": gettext_lazy("cancelled"),
}


def _render(
    request: HttpRequest,
    trade: SandboxTrade,
    *,
    step: str,
    client_secret: str,
    return_url: str,
    plan: str,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    provider = core.provider(CHANNEL)
    context = {
        "title": "3-D Secure" if step == "3ds" else _("Pay by card"),
        "trade": trade,
        "status": INTENT_STATUS_LABELS.get(intent_status(trade), intent_status(trade)),
        "open": trade.status == SandboxTrade.Status.WAITING,
        "step": step,
        "client_secret": client_secret,
        "return_url": return_url,
        "plan": plan,
        "error": error,
        "declines": [d for d in provider.declines if d.key != "authentication_failed"],
        "threshold": f"{THREE_DS_THRESHOLD} {trade.currency}",
    }
    return HttpResponse(render_to_string("sandbox/card.html", context, request), status=status)


def _luhn(number: str) -> bool:
    digits = [int(d) for d in number][::-1]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return total % 10 == 0


def needs_three_d_secure(trade: SandboxTrade, number: str) -> bool:
    """The issuer asks for 3-D Secure: the merchant requested it, the test card always does,
    or the amount is at or above the threshold."""
    return wants_three_d_secure(trade) or trade.amount >= THREE_DS_THRESHOLD or number in ALWAYS_3DS


def card_problem(number: str, exp: str, cvc: str) -> str | None:
    """The decline key a card form earns before the issuer is asked, or None."""
    if not re.fullmatch(r"\d{12,19}", number) or not _luhn(number):
        return "incorrect_number"
    match = re.fullmatch(r"(\d{1,2})\s*/\s*(\d{2}|\d{4})", exp)
    if not match or not 1 <= int(match.group(1)) <= 12:
        return "expired_card"
    year = int(match.group(2)) + (2000 if len(match.group(2)) == 2 else 0)
    today = timezone.localdate()
    if (year, int(match.group(1))) < (today.year, today.month):
        return "expired_card"
    if not re.fullmatch(r"\d{3,4}", cvc):
        return "incorrect_cvc"
    return TEST_CARDS.get(number)


def _finish(
    request: HttpRequest,
    trade: SandboxTrade,
    *,
    approve: bool,
    decline_key: str,
    return_url: str,
    client_secret: str,
    plan: str,
    step: str,
) -> HttpResponse:
    provider = core.provider(CHANNEL)
    with transaction.atomic():
        locked = SandboxTrade.objects.select_for_update().get(pk=trade.pk)
        if not locked.extra.get("charge_id"):
            locked.extra = {
                **locked.extra,
                "charge_id": f"ch_{random_token(24)}",
                "payment_method": f"pm_{random_token(24)}",
            }
        locked.extra = {**locked.extra, "requires_action": False}
        locked.save(update_fields=["extra"])
    provider.settle(locked, approve=approve, decline_key=decline_key)
    trade.refresh_from_db()
    if return_url and trade.status != SandboxTrade.Status.WAITING:
        outcome = "succeeded" if trade.status == SandboxTrade.Status.PAID else "failed"
        query = urlencode(
            {
                "payment_intent": trade.trade_no,
                "payment_intent_client_secret": client_secret,
                "redirect_status": outcome,
            }
        )
        return redirect(return_url + ("&" if "?" in return_url else "?") + query)
    return _render(
        request, trade, step=step, client_secret=client_secret, return_url=return_url, plan=plan
    )


def _page_trade(intent_id: str, client_secret: str) -> SandboxTrade | None:
    trade = SandboxTrade.objects.filter(channel=CHANNEL, trade_no=intent_id).first()
    if trade is None or not hmac.compare_digest(
        str(trade.extra.get("client_secret", "")), client_secret
    ):
        return None
    return trade


@csrf_exempt  # the acquirer's page: the merchant's CSRF token does not apply here
def elements(request: HttpRequest, intent_id: str) -> HttpResponse:
    """The hosted card page: card fields, then approve (with 3-D Secure when needed) or decline."""
    source = request.POST if request.method == "POST" else request.GET
    client_secret, return_url = source.get("client_secret", ""), source.get("return_url", "")
    plan = source.get("installments", "")
    trade = _page_trade(intent_id, client_secret)
    if trade is None:
        return HttpResponse(
            "Unknown payment or wrong client_secret.", status=404, content_type="text/plain"
        )
    if request.method != "POST" or trade.status != SandboxTrade.Status.WAITING:
        return _render(
            request,
            trade,
            step="card",
            client_secret=client_secret,
            return_url=return_url,
            plan=plan,
        )
    if plan and not (plan.isdigit() and trade.extra.get("installments_enabled")):
        return _render(
            request,
            trade,
            step="card",
            client_secret=client_secret,
            return_url=return_url,
            plan="",
            error=_("Instalments are not enabled for this payment."),
            status=400,
        )
    if plan:
        trade.extra = {
            **trade.extra,
            "installments_plan": {"count": int(plan), "interval": "month", "type": "fixed_count"},
        }
        trade.save(update_fields=["extra"])
    if request.POST.get("decision") != "approve":
        return _finish(
            request,
            trade,
            approve=False,
            decline_key=request.POST.get("reason", ""),
            return_url=return_url,
            client_secret=client_secret,
            plan=plan,
            step="card",
        )
    number = re.sub(r"[\s-]", "", request.POST.get("number", ""))
    problem = card_problem(number, request.POST.get("exp", ""), request.POST.get("cvc", ""))
    trade.extra = {**trade.extra, "last4": number[-4:]}
    trade.save(update_fields=["extra"])
    if problem:
        return _finish(
            request,
            trade,
            approve=False,
            decline_key=problem,
            return_url=return_url,
            client_secret=client_secret,
            plan=plan,
            step="card",
        )
    if needs_three_d_secure(trade, number):
        trade.extra = {**trade.extra, "requires_action": True}
        if return_url:
            trade.return_url = return_url[:500]
        trade.save(update_fields=["extra", "return_url"])
        query = urlencode(
            {"client_secret": client_secret, "return_url": return_url, "installments": plan}
        )
        return redirect(f"/sandbox/{CHANNEL}/3ds/{trade.trade_no}/?{query}")
    return _finish(
        request,
        trade,
        approve=True,
        decline_key="",
        return_url=return_url,
        client_secret=client_secret,
        plan=plan,
        step="card",
    )


@csrf_exempt
def three_d_secure(request: HttpRequest, intent_id: str) -> HttpResponse:
    """The issuer's 3-D Secure challenge for an intent in ``requires_action``."""
    source = request.POST if request.method == "POST" else request.GET
    client_secret, return_url, plan = (
        source.get("client_secret", ""),
        source.get("return_url", ""),
        source.get("installments", ""),
    )
    trade = _page_trade(intent_id, client_secret)
    if trade is None:
        return HttpResponse(
            "Unknown payment or wrong client_secret.", status=404, content_type="text/plain"
        )
    if (
        request.method != "POST"
        or trade.status != SandboxTrade.Status.WAITING
        or not trade.extra.get("requires_action")
    ):
        return _render(
            request,
            trade,
            step="3ds",
            client_secret=client_secret,
            return_url=return_url,
            plan=plan,
        )
    approve = request.POST.get("decision") == "approve"
    trade.extra = {**trade.extra, "three_d_secure_result": "authenticated" if approve else "failed"}
    trade.save(update_fields=["extra"])
    return _finish(
        request,
        trade,
        approve=approve,
        decline_key="" if approve else "authentication_failed",
        return_url=return_url,
        client_secret=client_secret,
        plan=plan,
        step="3ds",
    )

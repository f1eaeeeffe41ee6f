"""The simulated acquirer's PaymentIntents, charges and refunds as its API renders them, and
the provider hooks: accounts and keys, signed webhooks re-signed on every retry."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.db import transaction

from payments.sandbox import core
from payments.sandbox.card import disputes
from payments.sandbox.card.protocol import (
    ABANDONED,
    CHANNEL,
    event_body,
    random_token,
    sign,
    stable_id,
    units_of,
    webhook_headers,
)
from payments.sandbox.core import DeclineReason, SandboxProvider
from payments.sandbox.models import (
    SandboxMerchant,
    SandboxNotification,
    SandboxRefund,
    SandboxTrade,
)

#: decline code → (error code, message) as in ``last_payment_error``
CARD_ERRORS: dict[str, tuple[str, str]] = {
    "insufficient_funds": ("card_declined", "Your card has insufficient funds."),
    "generic_decline": ("card_declined", "Your card was declined."),
    "do_not_honor": ("card_declined", "Your card was declined."),
    "fraudulent": ("card_declined", "Your card was declined."),
    "authentication_required": (
        "card_declined",
        "Your card was declined. This transaction requires authentication.",
    ),
    "incorrect_cvc": ("incorrect_cvc", "Your card's security code is incorrect."),
    "incorrect_number": ("incorrect_number", "Your card number is incorrect."),
    "expired_card": ("expired_card", "Your card has expired."),
    "processing_error": (
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
    "payment_intent_authentication_failure": (
        "payment_intent_authentication_failure",
        "We are unable to authenticate your payment method. "
        "Please choose a different payment method and try again.",
    ),
}


#: ``payment_method_options[card][request_three_d_secure]``: "automatic" leaves 3-D Secure to
#: the issuer (here: the amount and the test card); "any" and "challenge" always ask for it.
REQUEST_THREE_D_SECURE = frozenset({"automatic", "any", "challenge"})


def wants_three_d_secure(trade: SandboxTrade) -> bool:
    """Whether the merchant asked for 3-D Secure on this intent whatever the card."""
    return trade.extra.get("request_three_d_secure") in ("any", "challenge")


# ---------------------------------------------------------------------------------------------
# Objects as the acquirer renders them


def intent_status(trade: SandboxTrade) -> str:
    if trade.status == SandboxTrade.Status.WAITING:
        return (
            "requires_action" if trade.extra.get("requires_action") else "requires_payment_method"
        )
    if trade.status == SandboxTrade.Status.PAID:
        return "succeeded"
    if trade.status == SandboxTrade.Status.CLOSED:
        return "canceled"
    return "requires_payment_method"  # a declined attempt (or a payer who walked away)


def _last_payment_error(trade: SandboxTrade) -> dict[str, Any] | None:
    if trade.status != SandboxTrade.Status.DECLINED or trade.decline_code == ABANDONED:
        return None
    code, message = CARD_ERRORS.get(
        trade.decline_code, ("card_declined", "Your card was declined.")
    )
    error: dict[str, Any] = {
        # Stripe: a failed 3-D Secure is an invalid_request_error, not the issuer's decline
        "type": "invalid_request_error"
        if code == "payment_intent_authentication_failure"
        else "card_error",
        "code": code,
        "message": message,
        "charge": trade.extra.get("charge_id"),
    }
    if code == "card_declined":
        error["decline_code"] = trade.decline_code
    if trade.extra.get("payment_method"):
        # Stripe embeds the PaymentMethod; its fingerprint names the card number per account
        # (the simulator only keeps the last four digits, so it is derived from those)
        error["payment_method"] = {
            "id": trade.extra["payment_method"],
            "object": "payment_method",
            "type": "card",
            "card": {
                "brand": "visa",
                "last4": trade.extra.get("last4", "4242"),
                "fingerprint": card_fingerprint(trade),
            },
        }
    return error


def card_fingerprint(trade: SandboxTrade) -> str:
    return stable_id("", f"{trade.merchant_id}:{trade.extra.get('last4', '4242')}")[:16]


def _installments(trade: SandboxTrade) -> dict[str, Any] | None:
    if not trade.extra.get("installments_enabled"):
        return None
    return {
        "enabled": True,
        "plan": trade.extra.get("installments_plan"),
        "available_plans": [
            {"count": n, "interval": "month", "type": "fixed_count"} for n in (3, 6, 9, 12, 18, 24)
        ],
    }


def _three_d_secure(trade: SandboxTrade) -> dict[str, Any] | None:
    """``payment_method_details.card.three_d_secure`` of a charge that went through it."""
    result = trade.extra.get("three_d_secure_result")
    if not result:
        return None
    return {
        "authentication_flow": "challenge",
        "result": "authenticated" if result == "authenticated" else "failed",
        "version": "2.2.0",
    }


def refund_json(trade: SandboxTrade, refund: SandboxRefund) -> dict[str, Any]:
    return {
        "id": refund.refund_id,
        "object": "refund",
        "amount": units_of(refund.amount, trade.currency),
        "balance_transaction": stable_id("txn_", refund.refund_id),
        "charge": trade.extra.get("charge_id"),
        "created": int(refund.created_at.timestamp()),
        "currency": trade.currency.lower(),
        "metadata": (trade.extra.get("refund_meta") or {}).get(refund.refund_id, {}),
        "payment_intent": trade.trade_no,
        "reason": None,
        "receipt_number": None,
        "status": {"success": "succeeded", "processing": "pending"}.get(refund.status, "failed"),
    }


def trade_refunds(trade: SandboxTrade) -> list[SandboxRefund]:
    return list(trade.refunds.order_by("-created_at", "-pk"))


def charge_json(trade: SandboxTrade) -> dict[str, Any] | None:
    charge_id = trade.extra.get("charge_id")
    if not charge_id:
        return None
    units = units_of(trade.amount, trade.currency)
    paid = trade.status == SandboxTrade.Status.PAID
    refunds = trade_refunds(trade)
    refunded = sum(
        units_of(r.amount, trade.currency)
        for r in refunds
        if r.status == SandboxRefund.Status.SUCCESS
    )
    return {
        "id": charge_id,
        "object": "charge",
        "amount": units,
        "amount_captured": units if paid else 0,
        "amount_refunded": refunded,
        "balance_transaction": stable_id("txn_", charge_id) if paid else None,
        "captured": paid,
        "created": int((trade.paid_at or trade.created_at).timestamp()),
        "currency": trade.currency.lower(),
        "description": trade.subject or None,
        "metadata": trade.extra.get("metadata", {}),
        "outcome": {
            "network_status": "approved_by_network" if paid else "declined_by_network",
            "type": "authorized" if paid else "issuer_declined",
        },
        "paid": paid,
        "payment_intent": trade.trade_no,
        "payment_method": trade.extra.get("payment_method"),
        "payment_method_details": {
            "type": "card",
            "card": {
                "brand": "visa",
                "last4": trade.extra.get("last4", "4242"),
                "fingerprint": card_fingerprint(trade),
                "installments": {"plan": trade.extra.get("installments_plan")}
                if _installments(trade)
                else None,
                "three_d_secure": _three_d_secure(trade),
            },
        },
        "refunded": paid and refunded >= units,
        "refunds": {
            "object": "list",
            "data": [refund_json(trade, r) for r in refunds],
            "has_more": False,
            "total_count": len(refunds),
            "url": f"/v1/charges/{charge_id}/refunds",
        },
        "status": "succeeded" if paid else "failed",
    }


def intent_json(trade: SandboxTrade, *, expand_charge: bool = False) -> dict[str, Any]:
    status = intent_status(trade)
    units = units_of(trade.amount, trade.currency)
    next_action = None
    if status == "requires_action":
        challenge_url = (
            f"{core.own_url()}/sandbox/{CHANNEL}/3ds/{trade.trade_no}/"
            f"?client_secret={trade.extra['client_secret']}"
        )
        if trade.extra.get("three_ds_flow") == "sdk":  # confirmed by the in-page element
            next_action = {
                "type": "use_stripe_sdk",
                "use_stripe_sdk": {
                    "type": "three_d_secure_redirect",
                    "stripe_js": challenge_url,
                    "source": stable_id("src_", trade.trade_no),
                },
            }
        else:
            next_action = {
                "type": "redirect_to_url",
                "redirect_to_url": {"url": challenge_url, "return_url": trade.return_url or None},
            }
    charge: Any = trade.extra.get("charge_id")
    if expand_charge and charge:
        charge = charge_json(trade)
    canceled = trade.status == SandboxTrade.Status.CLOSED
    return {
        "id": trade.trade_no,
        "object": "payment_intent",
        "amount": units,
        "amount_capturable": 0,
        "amount_received": units if status == "succeeded" else 0,
        "canceled_at": int(trade.extra["canceled_at"])
        if canceled and trade.extra.get("canceled_at")
        else None,
        "cancellation_reason": trade.extra.get("cancellation_reason", ABANDONED)
        if canceled
        else None,
        "capture_method": "automatic",
        "client_secret": trade.extra["client_secret"],
        "confirmation_method": "automatic",
        "created": int(trade.created_at.timestamp()),
        "currency": trade.currency.lower(),
        "description": trade.subject or None,
        "last_payment_error": _last_payment_error(trade),
        "latest_charge": charge,
        "livemode": False,
        "metadata": trade.extra.get("metadata", {}),
        "next_action": next_action,
        "payment_method": trade.extra.get("payment_method"),
        "payment_method_options": {
            "card": {
                "installments": _installments(trade),
                "request_three_d_secure": trade.extra.get("request_three_d_secure", "automatic"),
            }
        },
        "payment_method_types": ["card"],
        "status": status,
    }


def notify_merchant(merchant: SandboxMerchant, trade: SandboxTrade, body: bytes) -> None:
    if trade.notify_url:
        core.enqueue_notification(CHANNEL, trade.notify_url, webhook_headers(merchant, body), body)


# ---------------------------------------------------------------------------------------------
# The provider


class CardSandbox(SandboxProvider):
    channel = CHANNEL
    #: Stripe: "attempts to deliver … for up to three days with an exponential back off".
    retry_schedule = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 43200, 57600, 57600, 43200)
    declines = (
        DeclineReason("insufficient_funds", "Insufficient funds", "insufficient_funds"),
        DeclineReason(
            "phone_mismatch", "Card details do not match the issuer's record (CVC)", "incorrect_cvc"
        ),
        DeclineReason("risk", "Blocked as fraudulent", "fraudulent"),
        DeclineReason("timeout", "Payer walked away", ABANDONED),
        DeclineReason("do_not_honor", "Issuer declined (do not honor)", "do_not_honor"),
        DeclineReason("generic_decline", "Generic decline", "generic_decline"),
        DeclineReason("incorrect_cvc", "Incorrect CVC", "incorrect_cvc"),
        DeclineReason("incorrect_number", "Incorrect card number", "incorrect_number"),
        DeclineReason("expired_card", "Expired card", "expired_card"),
        DeclineReason("processing_error", "Processing error", "processing_error"),
        DeclineReason(
            "authentication_required", "Issuer requires authentication", "authentication_required"
        ),
        DeclineReason(
            "authentication_failed", "3-D Secure failed", "payment_intent_authentication_failure"
        ),
    )

    def provision(self, *, merchant_id: str, app_id: str = "") -> dict:
        """An acquirer account with API keys and one webhook endpoint; idempotent."""
        with transaction.atomic():
            merchant, _created = SandboxMerchant.objects.select_for_update().get_or_create(
                channel=CHANNEL, merchant_id=merchant_id, defaults={"config": {}}
            )
            config = dict(merchant.config)
            if not config.get("secret_key"):
                suffix = random_token(24)
                config.update(
                    secret_key=f"sk_test_51{suffix}{random_token(72)}",
                    publishable_key=f"pk_test_51{suffix}{random_token(72)}",
                    webhook_secret=f"whsec_{random_token(32)}",
                    webhook_endpoint=f"we_{random_token(24)}",
                )
                merchant.config = config
                merchant.save(update_fields=["config"])
        return {
            "secret_key": config["secret_key"],
            "publishable_key": config["publishable_key"],
            "webhook_secret": config["webhook_secret"],
            "hosted_page_url": f"{core.own_url()}/sandbox/{CHANNEL}/elements/{{id}}/"
            "?client_secret={client_secret}",
        }

    def payment_notification(self, trade: SandboxTrade) -> tuple[Mapping[str, str], bytes] | None:
        merchant = self.merchant(trade.merchant_id)
        if merchant is None:
            return None
        if trade.status == SandboxTrade.Status.PAID:
            body = event_body("payment_intent.succeeded", intent_json(trade))
        elif trade.status == SandboxTrade.Status.DECLINED and trade.decline_code != ABANDONED:
            body = event_body("payment_intent.payment_failed", intent_json(trade))
        else:
            return None
        return webhook_headers(merchant, body), body

    def notification_accepted(self, status_code: int, body: bytes) -> bool:
        return 200 <= status_code < 300

    dispute_notices = disputes

    def dispute_notify(self, merchant: SandboxMerchant, trade: SandboxTrade, body: bytes) -> None:
        notify_merchant(merchant, trade, body)

    def delivery_headers(self, note: SandboxNotification) -> Mapping[str, str]:
        """Every try carries a new timestamp and signature (Stripe re-signs retries)."""
        body = bytes(note.body)
        try:
            obj = json.loads(body)["data"]["object"]
            intent_id = (
                obj["id"] if obj.get("object") == "payment_intent" else obj.get("payment_intent")
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return note.headers
        trade = SandboxTrade.objects.filter(channel=CHANNEL, trade_no=intent_id).first()
        merchant = self.merchant(trade.merchant_id) if trade else None
        if merchant is None:
            return note.headers
        return {**note.headers, "Stripe-Signature": sign(merchant.config["webhook_secret"], body)}

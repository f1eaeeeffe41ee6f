"""The PayPal backend: OAuth, Orders v2 checkout and capture, webhook notices, refunds and
the STL report download (CHANNELS.md §4)."""

from __future__ import annotations

import datetime as dt
import tempfile
import threading
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import IO, Any, ClassVar

from payments.channels import http
from payments.channels.base import (
    Action,
    ChannelBackend,
    ChannelDeclined,
    ChannelUnavailable,
    CreateRequest,
    CreateResult,
    ErrorSpec,
    Notice,
    NotificationRejected,
    NotifyReply,
    Outcome,
    QueryResult,
    RefundRequest,
    RefundResult,
    header_map,
)
from payments.channels.paypal import buttons, sftp
from payments.channels.paypal.disputes import DISPUTE_EVENTS, dispute_notice
from payments.channels.paypal.errors import PAYPAL_ERROR_CODES
from payments.channels.paypal.settlement import StlFile, stl_file_name
from payments.channels.paypal.webhooks import clear_certificates, verify_webhook
from payments.channels.paypal.wire import (
    REFUND_OUTCOMES,
    error_from,
    first_capture,
    first_unit,
    format_amount,
    link,
    order_outcome,
    parse_amount,
    parse_time,
)

# OAuth tokens per (base_url, client_id): (token, monotonic expiry)
_tokens: dict[tuple[str, str], tuple[str, float]] = {}
_tokens_lock = threading.Lock()


def clear_caches() -> None:
    """Forget cached tokens and certificates (tests, key rotation)."""
    with _tokens_lock:
        _tokens.clear()
    clear_certificates()


# ---------------------------------------------------------------------------------------------
# The backend


class PayPalBackend(ChannelBackend):
    """PayPal Checkout (Orders v2) for one REST app.

    Credentials: ``client_id``, ``client_secret`` (the REST app), ``webhook_id`` (the id PayPal
    gave the webhook registered for ``<SITE_URL>/payments/notify/<account code>/``) and
    ``webhook_ca_pem`` (the CA certificate(s) PayPal's webhook signing certificate must chain
    to). ``merchant_id`` is the PayPal merchant (payer) id, checked against webhook payees.
    """

    code = "paypal"
    # Largest genuine notice: webhook events with the full resource and links, up to ~10 KB.
    max_notification_bytes = 64 * 1024
    methods = ("paypal",)
    display_name = "PayPal"
    #: PayPal's currencies (developer.paypal.com "Currency codes"), less HUF and TWD, which it
    #: takes without the decimals the rest of the world gives them
    charge_currencies = frozenset(
        {"AUD", "BRL", "CAD", "CHF", "CZK", "DKK", "EUR", "GBP", "HKD", "ILS", "JPY", "MXN"}
        | {"MYR", "NOK", "NZD", "PHP", "PLN", "SEK", "SGD", "THB", "USD"}
    )
    #: PayPal has no call that cancels an unapproved CAPTURE order; it expires by itself.
    supports_close = False
    error_codes: ClassVar[Mapping[str, ErrorSpec]] = PAYPAL_ERROR_CODES

    # -- plumbing ------------------------------------------------------------------------------
    def _credential(self, key: str) -> str:
        value = self.account.credentials.get(key)
        if not value:
            raise ChannelUnavailable(
                f"PayPal account {self.account.code!r} has no {key} configured",
                code="CONFIGURATION",
            )
        return str(value)

    def _token(self, *, refresh: bool = False) -> str:
        """Client-credentials token, cached until 60 s before it expires."""
        client_id = self._credential("client_id")
        key = (self.account.base_url.rstrip("/"), client_id)
        now = time.monotonic()
        with _tokens_lock:
            cached = _tokens.get(key)
            if cached and not refresh and cached[1] > now:
                return cached[0]
        response = http.send(
            self.account.base_url,
            "POST",
            "/v1/oauth2/token",
            auth=(client_id, self._credential("client_secret")),
            data={"grant_type": "client_credentials"},
            headers={"Accept": "application/json"},
            idempotent=True,
        )
        if response.status_code != 200:
            raise error_from(response)
        try:
            data = response.json()
            token = str(data["access_token"])
            expires_in = int(data.get("expires_in", 0))
        except (ValueError, KeyError, TypeError):
            raise ChannelUnavailable(
                "PayPal token answer is not the expected JSON", code="BAD_RESPONSE"
            ) from None
        with _tokens_lock:
            _tokens[key] = (token, now + max(expires_in - 60, 0))
        return token

    def _api(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = False,
    ) -> dict:
        """One REST call with the bearer token; a 401 refreshes the token once."""
        response = None
        for attempt in range(2):
            token = self._token(refresh=attempt > 0)
            request_headers = {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                **(headers or {}),
            }
            kwargs: dict[str, Any] = {"headers": request_headers, "idempotent": idempotent}
            if json_body is not None:
                kwargs["json"] = json_body
            response = http.send(self.account.base_url, method, path, **kwargs)
            if response.status_code != 401:
                break
        assert response is not None
        if 200 <= response.status_code < 300:
            if not response.content:
                return {}
            try:
                data = response.json()
            except ValueError:
                raise ChannelUnavailable(
                    f"PayPal {method} {path} answered non-JSON", code="BAD_RESPONSE"
                ) from None
            if not isinstance(data, dict):
                raise ChannelUnavailable(
                    f"PayPal {method} {path} answered unexpected JSON", code="BAD_RESPONSE"
                )
            return data
        raise error_from(response)

    def _get_order(self, order_id: str) -> dict:
        return self._api("GET", f"/v2/checkout/orders/{order_id}", idempotent=True)

    def _capture_order(self, order_id: str) -> dict:
        """Capture an approved order; repeating is safe (PayPal-Request-Id), and an order
        captured earlier is read back instead."""
        try:
            return self._api(
                "POST",
                f"/v2/checkout/orders/{order_id}/capture",
                json_body={},
                headers={
                    "PayPal-Request-Id": f"capture-{order_id}",
                    "Prefer": "return=representation",
                },
                idempotent=True,
            )
        except ChannelDeclined as exc:
            if exc.code == "ORDER_ALREADY_CAPTURED":
                return self._get_order(order_id)
            raise

    # -- paying --------------------------------------------------------------------------------
    def create(self, request: CreateRequest) -> CreateResult:
        """Create a CAPTURE order for PayPal's JS SDK buttons on the checkout page, with its
        ``approve`` link as the way on without JavaScript (§4.1; :mod:`.buttons`).

        ``PayPal-Request-Id = out_trade_no`` makes the create idempotent, so a timed-out create
        may be re-sent without opening a second order.
        """
        if request.method not in self.methods:
            raise ChannelDeclined(
                f"PayPal does not serve the method {request.method!r}", code="METHOD_NOT_SUPPORTED"
            )
        currency = request.currency.upper()
        unit = {
            "reference_id": request.out_trade_no,
            "custom_id": request.out_trade_no,
            "invoice_id": request.out_trade_no,
            "amount": {"currency_code": currency, "value": format_amount(request.amount, currency)},
        }
        if request.subject:
            unit["description"] = request.subject[:127]
        body: dict[str, Any] = {"intent": "CAPTURE", "purchase_units": [unit]}
        return_url = request.return_url or self.account.return_url
        if return_url:
            # application_context is deprecated: the experience context of the PayPal payment
            # source replaces it (Orders v2 reference, "payment_source.paypal").
            experience = {
                "return_url": return_url,
                "cancel_url": return_url,
                "user_action": "PAY_NOW",
                "shipping_preference": "NO_SHIPPING",
            }
            body["payment_source"] = {"paypal": {"experience_context": experience}}
        order = self._api(
            "POST",
            "/v2/checkout/orders",
            json_body=body,
            headers={"PayPal-Request-Id": request.out_trade_no, "Prefer": "return=representation"},
            idempotent=True,
        )
        approve = link(order, "approve") or link(order, "payer-action")
        if not order.get("id") or not approve:
            raise ChannelUnavailable(
                "PayPal order answer has no id or approve link", code="BAD_RESPONSE", raw=order
            )
        return CreateResult(
            action=Action(
                type="widget",
                url=approve,
                widget=buttons.widget(
                    sdk_url=buttons.sdk_url(
                        self.account.base_url,
                        client_id=self._credential("client_id"),
                        currency=currency,
                    ),
                    order_id=str(order["id"]),
                ),
            ),
            channel_trade_no=str(order["id"]),
        )

    def approval_capture(
        self, *, channel_trade_no: str, out_trade_no: str, amount: Decimal, currency: str
    ) -> Notice:
        """Capture an order the buyer approved in PayPal's buttons (``onApprove``), after
        checking it is this attempt's: its ``custom_id`` must be ``out_trade_no`` and its
        amount the attempt's, read from PayPal before anything is captured — an approval of
        another order or amount is refused (``ORDER_MISMATCH`` / ``AMOUNT_MISMATCH``) and
        nothing is charged. An order captured before (a replay, or the webhook was first)
        is read back; a capture PayPal refuses is a failed notice with its issue code.
        """
        order = self._get_order(channel_trade_no)
        unit = first_unit(order)
        custom = unit.get("custom_id") or unit.get("invoice_id")
        if custom != out_trade_no:
            raise ChannelDeclined(
                f"PayPal order {channel_trade_no} belongs to {custom!r}, not {out_trade_no}",
                code="ORDER_MISMATCH",
                raw=order,
            )
        money = unit.get("amount") or {}
        try:
            ordered = parse_amount(money.get("value"))
        except (ArithmeticError, ValueError):
            ordered = None
        if ordered != amount or str(money.get("currency_code", "")).upper() != currency.upper():
            raise ChannelDeclined(
                f"PayPal order {channel_trade_no} is for {money.get('value')} "
                f"{money.get('currency_code')}, not {amount} {currency}",
                code="AMOUNT_MISMATCH",
                raw=order,
            )
        if not first_capture(order):
            if order.get("status") != "APPROVED":
                raise ChannelDeclined(
                    f"PayPal order {channel_trade_no} is {order.get('status')}, not approved",
                    code="ORDER_NOT_APPROVED",
                    raw=order,
                )
            try:
                order = self._capture_order(channel_trade_no)
            except ChannelDeclined as exc:
                if exc.code == "ORDER_NOT_APPROVED":
                    raise
                return self._order_notice(
                    order, "failed", raw={"capture_error": exc.raw}, error_code=exc.code
                )
        return self._order_notice(order, order_outcome(order), raw={"capture": order})

    def notification_reply(self, *, accepted: bool, message: str = "") -> NotifyReply:
        """PayPal stops retrying on any 2xx; anything else is retried (25 times over 3 days)."""
        return NotifyReply(status=200 if accepted else 400, body=b"")

    def parse_notification(self, *, headers: Mapping[str, str], body: bytes) -> Notice:
        """Verify a webhook (CRC32 + SHA256withRSA, §4.2) and turn it into a notice.

        ``CHECKOUT.ORDER.APPROVED`` is captured here, synchronously; a capture that PayPal
        refuses yields a failed notice carrying PayPal's issue code. A transport failure while
        capturing propagates (ChannelUnavailable/ChannelTimeout) so the endpoint answers non-2xx
        and PayPal redelivers.
        """
        event = verify_webhook(self.account, header_map(headers), body)
        event_type = event.get("event_type")
        resource = event.get("resource")
        if not isinstance(event_type, str) or not isinstance(resource, dict):
            raise NotificationRejected("malformed PayPal webhook: no event_type or resource")
        self._check_payee(resource)
        try:
            if event_type == "CHECKOUT.ORDER.APPROVED":
                return self._approved_order_notice(resource, event)
            if event_type == "CHECKOUT.ORDER.COMPLETED":
                return self._order_notice(resource, order_outcome(resource), raw=event)
            if event_type in _CAPTURE_EVENTS:
                return self._capture_notice(resource, _CAPTURE_EVENTS[event_type], event)
            if event_type == "PAYMENT.CAPTURE.REFUNDED":
                return self._refund_notice(resource, event)
            if event_type in DISPUTE_EVENTS:
                return dispute_notice(resource, event, merchant_id=self.account.merchant_id)
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise NotificationRejected(
                f"malformed PayPal {event_type} resource: {type(exc).__name__}: {exc}"
            ) from None
        raise NotificationRejected(f"unknown PayPal event type {event_type!r}")

    def _approved_order_notice(self, order: dict, event: dict) -> Notice:
        order_id = str(order["id"])
        try:
            captured = self._capture_order(order_id)
        except ChannelDeclined as exc:
            outcome: Outcome = "pending" if exc.code == "ORDER_NOT_APPROVED" else "failed"
            return self._order_notice(
                order, outcome, raw={"event": event, "capture_error": exc.raw}, error_code=exc.code
            )
        return self._order_notice(
            captured, order_outcome(captured), raw={"event": event, "capture": captured}
        )

    def _order_notice(
        self,
        order: Mapping[str, Any],
        outcome: Outcome,
        *,
        raw: Mapping[str, Any],
        error_code: str = "",
    ) -> Notice:
        unit = first_unit(order)
        capture = first_capture(order)
        amount = capture.get("amount") or unit["amount"]
        out_trade_no = unit.get("custom_id") or unit.get("invoice_id") or capture.get("custom_id")
        if not out_trade_no:
            raise NotificationRejected("PayPal order carries no custom_id/invoice_id")
        return Notice(
            kind="payment",
            out_trade_no=str(out_trade_no),
            outcome=outcome,
            amount=parse_amount(amount["value"]),
            currency=str(amount["currency_code"]),
            merchant_id=str((unit.get("payee") or {}).get("merchant_id", "")),
            channel_trade_no=str(order["id"]),
            occurred_at=parse_time(capture.get("create_time") or order.get("update_time")),
            error_code=error_code
            or (str(capture.get("status", "")) if outcome == "failed" else ""),
            raw=raw,
        )

    def _capture_notice(self, capture: dict, outcome: Outcome, event: dict) -> Notice:
        out_trade_no = capture.get("custom_id") or capture.get("invoice_id")
        if not out_trade_no:
            raise NotificationRejected("PayPal capture carries no custom_id/invoice_id")
        related = (capture.get("supplementary_data") or {}).get("related_ids") or {}
        reason = (capture.get("status_details") or {}).get("reason", "")
        return Notice(
            kind="payment",
            out_trade_no=str(out_trade_no),
            outcome=outcome,
            amount=parse_amount(capture["amount"]["value"]),
            currency=str(capture["amount"]["currency_code"]),
            merchant_id=str((capture.get("payee") or {}).get("merchant_id", "")),
            channel_trade_no=str(related.get("order_id", "")),
            occurred_at=parse_time(capture.get("create_time")),
            error_code=str(reason or capture.get("status", "")) if outcome == "failed" else "",
            raw=event,
        )

    def _refund_notice(self, refund: dict, event: dict) -> Notice:
        """PAYMENT.CAPTURE.REFUNDED: our refund request set invoice_id = refund_no and
        custom_id = out_trade_no."""
        refund_no, out_trade_no = refund.get("invoice_id"), refund.get("custom_id")
        if not refund_no or not out_trade_no:
            raise NotificationRejected(
                "PayPal refund carries no invoice_id (refund_no) or custom_id (out_trade_no)"
            )
        return Notice(
            kind="refund",
            out_trade_no=str(out_trade_no),
            outcome=REFUND_OUTCOMES.get(str(refund.get("status", "")), "pending"),
            amount=parse_amount(refund["amount"]["value"]),
            currency=str(refund["amount"]["currency_code"]),
            merchant_id=str((refund.get("payer") or {}).get("merchant_id", "")),
            refund_no=str(refund_no),
            channel_refund_no=str(refund.get("id", "")),
            occurred_at=parse_time(refund.get("create_time")),
            raw=event,
        )

    def _check_payee(self, resource: Mapping[str, Any]) -> None:
        """Refuse a resource whose payee (order/capture) or refunding payer is another merchant."""
        expected = self.account.merchant_id
        if not expected:
            return
        found = [
            (unit.get("payee") or {}).get("merchant_id")
            for unit in resource.get("purchase_units") or []
            if isinstance(unit, dict)
        ]
        found += [
            (resource.get("payee") or {}).get("merchant_id"),
            (resource.get("payer") or {}).get("merchant_id"),
        ]
        for merchant in found:
            if merchant and merchant != expected:
                raise NotificationRejected(
                    f"PayPal webhook is for merchant {merchant}, not this account's {expected}"
                )

    # -- status --------------------------------------------------------------------------------
    def query(self, *, out_trade_no: str, channel_trade_no: str = "") -> QueryResult:
        """``GET /v2/checkout/orders/{id}``; an APPROVED order is captured on the spot (the
        same idempotent capture the webhook path uses) so lost webhooks cannot strand money.

        Orders are addressed by PayPal's id only; without it the outcome is "unknown".
        """
        if not channel_trade_no:
            return QueryResult(
                outcome="unknown", raw={"reason": "PayPal orders can only be queried by order id"}
            )
        try:
            order = self._get_order(channel_trade_no)
        except ChannelDeclined as exc:
            if exc.code in ("RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID"):
                return QueryResult(outcome="closed", error_code=exc.code, raw=exc.raw or {})
            raise
        unit = first_unit(order)
        custom = unit.get("custom_id") or unit.get("invoice_id")
        if custom and custom != out_trade_no:
            raise ChannelDeclined(
                f"PayPal order {channel_trade_no} belongs to {custom}, not {out_trade_no}",
                code="ORDER_MISMATCH",
                raw=order,
            )
        error_code = ""
        if order.get("status") == "APPROVED" and not first_capture(order):
            try:
                order = self._capture_order(channel_trade_no)
            except ChannelDeclined as exc:
                if exc.code != "ORDER_NOT_APPROVED":
                    return self._query_result(order, "failed", error_code=exc.code)
        outcome = order_outcome(order)
        if outcome == "failed":
            error_code = str(first_capture(order).get("status", ""))
        return self._query_result(order, outcome, error_code=error_code)

    @staticmethod
    def _query_result(
        order: Mapping[str, Any], outcome: Outcome, *, error_code: str = ""
    ) -> QueryResult:
        unit = first_unit(order)
        capture = first_capture(order)
        amount = capture.get("amount") or unit.get("amount") or {}
        return QueryResult(
            outcome=outcome,
            amount=parse_amount(amount["value"]) if amount.get("value") is not None else None,
            currency=str(amount.get("currency_code", "")),
            channel_trade_no=str(order.get("id", "")),
            paid_at=parse_time(capture.get("create_time")) if outcome == "succeeded" else None,
            error_code=error_code,
            raw=dict(order),
        )

    def close(self, *, out_trade_no: str, channel_trade_no: str = "") -> None:
        """No call: PayPal cannot cancel a CAPTURE order; an unapproved one expires on its own.

        If the buyer approves after we gave up, the webhook still captures it and the platform's
        late-success rule (deliver if stock allows, otherwise refund) applies.
        """
        return None

    # -- refunds -------------------------------------------------------------------------------
    def refund(self, request: RefundRequest) -> RefundResult:
        """``POST /v2/payments/captures/{capture_id}/refund``; ``PayPal-Request-Id = refund_no``
        makes repeats return the same refund. The refund carries ``invoice_id = refund_no`` and
        ``custom_id = out_trade_no`` so webhooks and the STL file name both."""
        order = self._get_order(request.channel_trade_no)
        capture = first_capture(order)
        if not capture.get("id"):
            raise ChannelDeclined(
                f"PayPal order {request.channel_trade_no} has no capture to refund",
                code="RESOURCE_NOT_FOUND",
                raw=order,
            )
        currency = request.currency.upper()
        body: dict[str, Any] = {
            "amount": {"value": format_amount(request.amount, currency), "currency_code": currency},
            "invoice_id": request.refund_no,
            "custom_id": request.out_trade_no,
        }
        if request.reason:
            body["note_to_payer"] = request.reason[:255]
        refund = self._api(
            "POST",
            f"/v2/payments/captures/{capture['id']}/refund",
            json_body=body,
            headers={"PayPal-Request-Id": request.refund_no, "Prefer": "return=representation"},
            idempotent=True,
        )
        return RefundResult(
            outcome=REFUND_OUTCOMES.get(str(refund.get("status", "")), "pending"),
            channel_refund_no=str(refund.get("id", "")),
            raw=refund,
        )

    def query_refund(self, request: RefundRequest) -> RefundResult:
        """Read the order's refunds and find ours by ``invoice_id = refund_no`` (no re-send)."""
        order = self._get_order(request.channel_trade_no)
        refunds = (first_unit(order).get("payments") or {}).get("refunds") or []
        for refund in refunds:
            if isinstance(refund, dict) and refund.get("invoice_id") == request.refund_no:
                return RefundResult(
                    outcome=REFUND_OUTCOMES.get(str(refund.get("status", "")), "pending"),
                    channel_refund_no=str(refund.get("id", "")),
                    raw=refund,
                )
        return RefundResult(
            outcome="failed", error_code="RESOURCE_NOT_FOUND", raw={"refunds": refunds}
        )

    # -- settlement ----------------------------------------------------------------------------
    def download_settlement(self, day: dt.date) -> bytes:
        """The day's ``STL-yyyymmdd.*`` report.

        Live PayPal publishes STL files only on its SFTP server; an account with ``sftp_host``
        in its credentials fetches them there (see :mod:`payments.channels.paypal.sftp`),
        streamed into a temporary file rather than held in memory while it transfers. Without
        SFTP settings the report is read from ``<base_url>/ppreports/outgoing/`` over HTTP,
        which is how the sandbox serves it.
        """
        credentials = self.account.credentials
        if sftp.configured(credentials):
            settings = sftp.SftpSettings.from_credentials(credentials, self.account.code)
            with tempfile.TemporaryFile(prefix="paypal-stl-") as spool:
                sftp.fetch_report(settings, day, spool, account_code=self.account.code)
                spool.seek(0)
                return spool.read()
        token = self._token()
        response = http.send(
            self.account.base_url,
            "GET",
            f"/ppreports/outgoing/{stl_file_name(day)}",
            headers={"Authorization": f"Bearer {token}"},
            idempotent=True,
        )
        if response.status_code == 404:
            raise ChannelUnavailable(
                f"no STL file for {day} at {self.account.base_url} "
                "(live PayPal delivers STL by SFTP only: configure the sftp_* credentials)",
                code="REPORT_NOT_AVAILABLE",
            )
        if response.status_code != 200:
            raise error_from(response)
        return response.content

    @classmethod
    def open_settlement(cls, stream: IO[bytes], *, merchant_id: str | None = None) -> StlFile:
        """Parse an STL file; with ``merchant_id`` a file of another PayPal account is refused."""
        return StlFile(stream, merchant_id=merchant_id)


_CAPTURE_EVENTS: dict[str, Outcome] = {
    "PAYMENT.CAPTURE.COMPLETED": "succeeded",
    "PAYMENT.CAPTURE.PENDING": "pending",
    "PAYMENT.CAPTURE.DENIED": "failed",
    "PAYMENT.CAPTURE.DECLINED": "failed",
}

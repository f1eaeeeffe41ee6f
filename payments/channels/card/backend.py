"""The card backend: PaymentIntents paid on the acquirer's card page (instalments included),
signed webhooks, queries, cancelling, refunds and the report run download (CHANNELS.md §4)."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any, ClassVar
from urllib.parse import urlencode, urljoin, urlsplit
from zoneinfo import ZoneInfo

from django.conf import settings

from payments.channels import http
from payments.channels.base import (
    Action,
    ChannelBackend,
    ChannelDeclined,
    ChannelTimeout,
    ChannelUnavailable,
    CreateRequest,
    CreateResult,
    ErrorSpec,
    Notice,
    NotificationRejected,
    NotifyReply,
    QueryResult,
    RefundRequest,
    RefundResult,
)
from payments.channels.card.disputes import DISPUTE_EVENTS, dispute_notice
from payments.channels.card.errors import CARD_ERROR_CODES
from payments.channels.card.settlement import REPORT_COLUMNS, REPORT_TYPE, StripeReport
from payments.channels.card.wire import (
    API_VERSION,
    PAYMENT_EVENTS,
    REFUND_EVENTS,
    REFUND_OUTCOMES,
    ci_headers,
    epoch_time,
    error_from,
    from_units,
    intent_outcome,
    to_units,
    verify_signature,
)

#: Stripe.js, loaded by the checkout page for accounts on Stripe's own API host
STRIPE_JS = "https://js.stripe.com/v3/"
STRIPE_API_HOST = "api.stripe.com"
#: ``payment_method_options[card][request_three_d_secure]`` values the backend sends
THREE_D_SECURE_REQUESTS = frozenset({"challenge", "any"})


class CardBackend(ChannelBackend):
    """A card acquirer that speaks Stripe's API.

    Credentials: ``secret_key`` (sk_…), ``publishable_key`` (pk_…), ``webhook_secret`` (whsec_…;
    a list during rotation) and ``hosted_page_url`` (the card page, ``{id}`` and
    ``{client_secret}`` are filled in). ``merchant_id`` is the acquirer account id; it is written
    into every intent's metadata and checked in webhooks and settlement reports.

    The buyer pays in the checkout page through the acquirer's Payment Element (Stripe.js from
    :data:`STRIPE_JS`, or the script the account's own API host serves at ``v3/`` — the
    sandbox's stand-in); the hosted page stays as the fallback without JavaScript.
    """

    supports_three_d_secure = True

    # Largest genuine notice: event objects with the charge embedded, up to ~10 KB.
    max_notification_bytes = 64 * 1024

    code = "card"
    methods = ("card", "card_instalments")
    display_name = "Card"
    charge_currencies = None  # the acquirer charges any currency; amounts in its minor unit
    error_codes: ClassVar[Mapping[str, ErrorSpec]] = CARD_ERROR_CODES
    #: report runs: how often and how long to wait for ``status == succeeded``
    report_poll_attempts: ClassVar[int] = 30
    report_poll_interval: ClassVar[float] = 2.0
    sleep: Callable[[float], None] = staticmethod(time.sleep)

    # -- plumbing ------------------------------------------------------------------------------
    def _credential(self, key: str) -> str:
        value = self.account.credentials.get(key)
        if not value:
            raise ChannelUnavailable(
                f"card account {self.account.code!r} has no {key} configured", code="CONFIGURATION"
            )
        return str(value)

    def _auth_headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self._credential('secret_key')}",
            "Stripe-Version": API_VERSION,
        }

    def _api(
        self,
        method: str,
        path: str,
        *,
        data: Sequence[tuple[str, str]] | None = None,
        params: Sequence[tuple[str, str]] | None = None,
        idempotency_key: str = "",
        idempotent: bool = False,
    ) -> dict:
        headers = self._auth_headers()
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        kwargs: dict[str, Any] = {"headers": headers, "idempotent": idempotent}
        if data is not None:
            # ordered, repeatable keys (``a[]``, ``a[0]``) as Stripe's own clients send them
            kwargs["content"] = urlencode(list(data)).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if params is not None:
            kwargs["params"] = list(params)
        response = http.send(self.account.base_url, method, path, **kwargs)
        if 200 <= response.status_code < 300:
            try:
                body = response.json()
            except ValueError:
                raise ChannelUnavailable(
                    f"acquirer {method} {path} answered non-JSON", code="api_error"
                ) from None
            if not isinstance(body, dict):
                raise ChannelUnavailable(
                    f"acquirer {method} {path} answered unexpected JSON", code="api_error"
                )
            return body
        raise error_from(response)

    # -- paying --------------------------------------------------------------------------------
    def create(self, request: CreateRequest) -> CreateResult:
        """Create a PaymentIntent (Idempotency-Key = out_trade_no) and hand the card page its
        widget params (§4.4)."""
        if request.method not in self.methods:
            raise ChannelDeclined(
                f"the card channel does not serve {request.method!r}", code="parameter_missing"
            )
        if request.method == "card_instalments" and not request.instalments:
            raise ChannelDeclined(
                "card_instalments needs the number of instalments", code="parameter_missing"
            )
        currency = request.currency.upper()
        data: list[tuple[str, str]] = [
            ("amount", str(to_units(request.amount, currency))),
            ("currency", currency.lower()),
            ("payment_method_types[]", "card"),
            ("metadata[out_trade_no]", request.out_trade_no),
            ("metadata[merchant_id]", self.account.merchant_id),
        ]
        if request.subject:
            data.append(("description", request.subject[:1000]))
        if request.instalments:
            data += [
                ("payment_method_options[card][installments][enabled]", "true"),
                ("metadata[installments]", str(request.instalments)),
            ]
        if request.three_d_secure:
            if request.three_d_secure not in THREE_D_SECURE_REQUESTS:
                raise ChannelDeclined(
                    f"unknown 3-D Secure request {request.three_d_secure!r}",
                    code="parameter_missing",
                )
            data += [
                ("payment_method_options[card][request_three_d_secure]", request.three_d_secure),
                ("metadata[three_d_secure]", request.three_d_secure),
            ]
        intent = self._api(
            "POST",
            "/v1/payment_intents",
            data=data,
            idempotency_key=request.out_trade_no,
            idempotent=True,
        )
        intent_id, client_secret = str(intent.get("id", "")), str(intent.get("client_secret", ""))
        if not intent_id or not client_secret:
            raise ChannelUnavailable(
                "PaymentIntent answer lacks id or client_secret", code="api_error", raw=intent
            )
        widget: dict[str, Any] = {
            "element": "payment",
            "js": self.element_script_url(),
            "publishable_key": self._credential("publishable_key"),
            "client_secret": client_secret,
            "payment_intent": intent_id,
        }
        if request.three_d_secure:
            widget["three_d_secure"] = request.three_d_secure
        query: dict[str, str] = {}
        if request.instalments:
            widget["installments"] = {
                "enabled": True,
                "plan": {"count": request.instalments, "interval": "month", "type": "fixed_count"},
            }
            query["installments"] = str(request.instalments)
        return_url = request.return_url or self.account.return_url
        if return_url:
            query["return_url"] = return_url
            widget["return_url"] = return_url
        url = (
            self._credential("hosted_page_url")
            .replace("{id}", intent_id)
            .replace("{client_secret}", client_secret)
        )
        if query:
            url += ("&" if "?" in url else "?") + urlencode(query)
        return CreateResult(
            action=Action(type="widget", url=url, widget=widget), channel_trade_no=intent_id
        )

    def element_script_url(self) -> str:
        """Where the page loads the Payment Element from: Stripe.js for an account on Stripe's
        API, else the ``v3/`` script of the account's own API host (the sandbox's stand-in of
        the same client API), so a page never loads a script from a host the account does not
        already trust."""
        base = self.account.base_url or f"https://{STRIPE_API_HOST}"
        parts = urlsplit(base)
        if (parts.hostname or "").lower() == STRIPE_API_HOST:
            return STRIPE_JS
        return urljoin(base.rstrip("/") + "/", "v3/")

    def notification_reply(self, *, accepted: bool, message: str = "") -> NotifyReply:
        """Any 2xx stops the acquirer's retries; we answer 200 ``{"received": true}``."""
        if accepted:
            return NotifyReply(
                status=200, body=b'{"received": true}', content_type="application/json"
            )
        return NotifyReply(status=400, body=b'{"received": false}', content_type="application/json")

    def _webhook_secrets(self) -> list[str]:
        value = self.account.credentials.get("webhook_secret")
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, (list, tuple)):
            return [str(part) for part in value if part]
        return []

    def parse_notification(self, *, headers: Mapping[str, str], body: bytes) -> Notice:
        """Verify ``Stripe-Signature`` (§4.5) and map the event to a payment, refund or
        dispute notice."""
        header = ci_headers(headers).get("stripe-signature")
        if not header:
            raise NotificationRejected("not a signed card webhook: no Stripe-Signature header")
        secrets = self._webhook_secrets()
        if not secrets:
            raise NotificationRejected(
                f"card account {self.account.code!r} has no webhook_secret configured"
            )
        verify_signature(body, header, secrets)
        try:
            event = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise NotificationRejected("malformed card webhook body: not JSON") from None
        if not isinstance(event, dict) or event.get("object") != "event":
            raise NotificationRejected("malformed card webhook body: not an event object")
        account = event.get("account")
        if account and self.account.merchant_id and account != self.account.merchant_id:
            raise NotificationRejected(
                f"card webhook is for account {account}, not {self.account.merchant_id}"
            )
        live_key = str(self.account.credentials.get("secret_key", "")).startswith("sk_live_")
        if "livemode" in event and bool(event["livemode"]) != live_key:
            raise NotificationRejected(
                f"{'test' if live_key else 'live'}-mode event sent to a "
                f"{'live' if live_key else 'test'}-mode account"
            )
        event_type = event.get("type")
        obj = (
            (event.get("data") or {}).get("object") if isinstance(event.get("data"), dict) else None
        )
        if not isinstance(event_type, str) or not isinstance(obj, dict):
            raise NotificationRejected("malformed card webhook: no type or data.object")
        try:
            if event_type in PAYMENT_EVENTS:
                return self._intent_notice(obj, event)
            if event_type in REFUND_EVENTS:
                return self._refund_notice(obj, event)
            if event_type == "charge.refunded":
                return self._refund_notice(self._newest_refund(obj), event)
            if event_type in DISPUTE_EVENTS:
                return dispute_notice(obj, event)
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise NotificationRejected(
                f"malformed {event_type} object: {type(exc).__name__}: {exc}"
            ) from None
        raise NotificationRejected(f"unknown card webhook event type {event_type!r}")

    def _check_metadata_merchant(self, metadata: Mapping[str, Any]) -> None:
        merchant = metadata.get("merchant_id")
        if merchant and self.account.merchant_id and merchant != self.account.merchant_id:
            raise NotificationRejected(
                f"card webhook names merchant {merchant}, not {self.account.merchant_id}"
            )

    def _intent_notice(self, intent: dict, event: dict) -> Notice:
        metadata = intent.get("metadata") or {}
        out_trade_no = metadata.get("out_trade_no")
        if not out_trade_no:
            raise NotificationRejected("PaymentIntent has no metadata[out_trade_no]")
        self._check_metadata_merchant(metadata)
        outcome, code = intent_outcome(intent)
        currency = str(intent["currency"]).upper()
        units = (
            intent.get("amount_received")
            if outcome == "succeeded" and intent.get("amount_received")
            else intent["amount"]
        )
        return Notice(
            kind="payment",
            out_trade_no=str(out_trade_no),
            outcome=outcome,
            amount=from_units(units, currency),
            currency=currency,
            merchant_id=str(metadata.get("merchant_id", "")),
            channel_trade_no=str(intent["id"]),
            occurred_at=epoch_time(event.get("created")),
            error_code=code if outcome == "failed" else "",
            raw=event,
        )

    def _refund_notice(self, refund: Mapping[str, Any], event: dict) -> Notice:
        metadata = refund.get("metadata") or {}
        refund_no, out_trade_no = metadata.get("refund_no"), metadata.get("out_trade_no")
        if not refund_no or not out_trade_no:
            raise NotificationRejected(
                "refund has no metadata[refund_no] / metadata[out_trade_no]: not made by Cardex"
            )
        self._check_metadata_merchant(metadata)
        currency = str(refund["currency"]).upper()
        return Notice(
            kind="refund",
            out_trade_no=str(out_trade_no),
            outcome=REFUND_OUTCOMES.get(str(refund.get("status", "")), "pending"),
            amount=from_units(refund["amount"], currency),
            currency=currency,
            merchant_id=str(metadata.get("merchant_id", "")),
            channel_trade_no=str(refund.get("payment_intent") or ""),
            refund_no=str(refund_no),
            channel_refund_no=str(refund["id"]),
            occurred_at=epoch_time(refund.get("created")),
            error_code=str(refund.get("failure_reason") or ""),
            raw=event,
        )

    def _newest_refund(self, charge: Mapping[str, Any]) -> Mapping[str, Any]:
        """``charge.refunded`` is a snapshot of the charge: its newest refund is the one that
        triggered it. API versions after 2022-11-15 omit ``refunds``; then list them."""
        refunds = (
            ((charge.get("refunds") or {}).get("data"))
            if isinstance(charge.get("refunds"), dict)
            else None
        )
        if not refunds:
            listing = self._api(
                "GET",
                "/v1/refunds",
                params=[("charge", str(charge["id"])), ("limit", "1")],
                idempotent=True,
            )
            refunds = listing.get("data") or []
        if not refunds or not isinstance(refunds[0], dict):
            raise NotificationRejected(f"charge.refunded for {charge.get('id')} lists no refund")
        return refunds[0]

    # -- status --------------------------------------------------------------------------------
    def _find_intent(self, out_trade_no: str, channel_trade_no: str) -> dict | None:
        if channel_trade_no:
            try:
                return self._api(
                    "GET",
                    f"/v1/payment_intents/{channel_trade_no}",
                    params=[("expand[]", "latest_charge")],
                    idempotent=True,
                )
            except ChannelDeclined as exc:
                if exc.code == "resource_missing":
                    return None
                raise
        found = self._api(
            "GET",
            "/v1/payment_intents/search",
            params=[("query", f"metadata['out_trade_no']:'{out_trade_no}'")],
            idempotent=True,
        )
        data = found.get("data") or []
        return data[0] if data and isinstance(data[0], dict) else None

    def query(self, *, out_trade_no: str, channel_trade_no: str = "") -> QueryResult:
        """``GET /v1/payment_intents/{id}`` (or a metadata search when the create's answer was
        lost); declined attempts read as failed with their decline code."""
        intent = self._find_intent(out_trade_no, channel_trade_no)
        if intent is None:
            return QueryResult(
                outcome="closed" if channel_trade_no else "unknown", error_code="resource_missing"
            )
        owner = (intent.get("metadata") or {}).get("out_trade_no")
        if owner and owner != out_trade_no:
            raise ChannelDeclined(
                f"PaymentIntent {intent.get('id')} belongs to {owner}, not {out_trade_no}",
                code="resource_missing",
                raw=intent,
            )
        outcome, code = intent_outcome(intent)
        currency = str(intent.get("currency", "")).upper()
        charge = intent.get("latest_charge")
        paid_at = (
            epoch_time(charge.get("created"))
            if isinstance(charge, dict) and outcome == "succeeded"
            else None
        )
        return QueryResult(
            outcome=outcome,
            amount=from_units(intent["amount"], currency)
            if currency and "amount" in intent
            else None,
            currency=currency,
            channel_trade_no=str(intent.get("id", "")),
            paid_at=paid_at,
            error_code=code,
            raw=intent,
        )

    def close(self, *, out_trade_no: str, channel_trade_no: str = "") -> None:
        """``POST /v1/payment_intents/{id}/cancel`` (reason ``abandoned``); cancelling twice is
        fine, cancelling a succeeded intent raises ChannelDeclined so the caller queries."""
        if not channel_trade_no:
            intent = self._find_intent(out_trade_no, "")
            if intent is None:
                return
            channel_trade_no = str(intent["id"])
        try:
            self._api(
                "POST",
                f"/v1/payment_intents/{channel_trade_no}/cancel",
                data=[("cancellation_reason", "abandoned")],
                idempotent=True,
            )
        except ChannelDeclined as exc:
            error = (exc.raw or {}).get("error") or {} if isinstance(exc.raw, dict) else {}
            if (
                exc.code == "payment_intent_unexpected_state"
                and (error.get("payment_intent") or {}).get("status") == "canceled"
            ):
                return
            if exc.code == "resource_missing":
                return
            raise

    # -- refunds -------------------------------------------------------------------------------
    def refund(self, request: RefundRequest) -> RefundResult:
        """``POST /v1/refunds`` with Idempotency-Key = refund_no; metadata carries refund_no
        and out_trade_no so webhooks and reports name both."""
        currency = request.currency.upper()
        data = [
            ("payment_intent", request.channel_trade_no),
            ("amount", str(to_units(request.amount, currency))),
            ("metadata[refund_no]", request.refund_no),
            ("metadata[out_trade_no]", request.out_trade_no),
            ("metadata[merchant_id]", self.account.merchant_id),
        ]
        if request.reason:
            data.append(("metadata[reason]", request.reason[:500]))
        refund = self._api(
            "POST", "/v1/refunds", data=data, idempotency_key=request.refund_no, idempotent=True
        )
        return RefundResult(
            outcome=REFUND_OUTCOMES.get(str(refund.get("status", "")), "pending"),
            channel_refund_no=str(refund.get("id", "")),
            error_code=str(refund.get("failure_reason") or ""),
            raw=refund,
        )

    def query_refund(self, request: RefundRequest) -> RefundResult:
        """List the intent's refunds and find ours by ``metadata[refund_no]`` (no re-send)."""
        listing = self._api(
            "GET",
            "/v1/refunds",
            params=[("payment_intent", request.channel_trade_no), ("limit", "100")],
            idempotent=True,
        )
        for refund in listing.get("data") or []:
            if (
                isinstance(refund, dict)
                and (refund.get("metadata") or {}).get("refund_no") == request.refund_no
            ):
                return RefundResult(
                    outcome=REFUND_OUTCOMES.get(str(refund.get("status", "")), "pending"),
                    channel_refund_no=str(refund.get("id", "")),
                    error_code=str(refund.get("failure_reason") or ""),
                    raw=refund,
                )
        return RefundResult(outcome="failed", error_code="resource_missing", raw=listing)

    # -- settlement ----------------------------------------------------------------------------
    def download_settlement(self, day: dt.date) -> bytes:
        """Run ``balance_change_from_activity.itemized.3`` for ``day`` (settings.TIME_ZONE) with
        ``REPORT_COLUMNS``, wait for it, and download its CSV as delivered (§4.6)."""
        zone = settings.TIME_ZONE
        start = dt.datetime.combine(day, dt.time.min, tzinfo=ZoneInfo(zone))
        end = start + dt.timedelta(days=1)
        data = [
            ("report_type", REPORT_TYPE),
            ("parameters[interval_start]", str(int(start.timestamp()))),
            ("parameters[interval_end]", str(int(end.timestamp()))),
            ("parameters[timezone]", zone),
        ] + [
            (f"parameters[columns][{index}]", column) for index, column in enumerate(REPORT_COLUMNS)
        ]
        run = self._api(
            "POST",
            "/v1/reporting/report_runs",
            data=data,
            idempotency_key=f"report-{self.account.merchant_id}-{day.isoformat()}",
            idempotent=True,
        )
        for _attempt in range(self.report_poll_attempts):
            status = run.get("status")
            if status == "succeeded":
                break
            if status == "failed":
                raise ChannelUnavailable(
                    f"report run {run.get('id')} failed: {run.get('error')}",
                    code="report_run_failed",
                    raw=run,
                )
            self.sleep(self.report_poll_interval)
            run = self._api("GET", f"/v1/reporting/report_runs/{run['id']}", idempotent=True)
        else:
            raise ChannelTimeout(
                f"report run {run.get('id')} still {run.get('status')}", code="TIMEOUT", raw=run
            )
        url = str(((run.get("result") or {}).get("url")) or "")
        if not url:
            raise ChannelUnavailable(
                f"report run {run.get('id')} has no result file", code="api_error", raw=run
            )
        self._check_file_url(url)
        parts = urlsplit(url)
        response = http.send(
            f"{parts.scheme}://{parts.netloc}",
            "GET",
            url,
            headers=self._auth_headers(),
            idempotent=True,
        )
        if response.status_code != 200:
            raise error_from(response)
        return response.content

    def _check_file_url(self, url: str) -> None:
        """Send the secret key only to the API's own host or Stripe's file host."""
        parts, base = urlsplit(url), urlsplit(self.account.base_url)
        host = (parts.hostname or "").lower()
        if parts.username or parts.password:
            raise ChannelUnavailable(f"report file URL {url!r} is not allowed", code="api_error")
        if (parts.scheme, parts.netloc) == (base.scheme, base.netloc):
            return
        if parts.scheme == "https" and (host == "stripe.com" or host.endswith(".stripe.com")):
            return
        raise ChannelUnavailable(
            f"report file URL host {host!r} is neither the API host nor *.stripe.com",
            code="api_error",
        )

    @classmethod
    def open_settlement(cls, stream: IO[bytes], *, merchant_id: str | None = None) -> StripeReport:
        """Parse a report CSV; with ``merchant_id`` rows of another account are refused."""
        return StripeReport(stream, merchant_id=merchant_id)

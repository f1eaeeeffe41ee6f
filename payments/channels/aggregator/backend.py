"""The epay aggregator backend: creation by page jump (``submit.php``) or API (``mapi.php``),
the GET notification confirmed by an order query, refunds and the daily export."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import IO, Any, ClassVar
from urllib.parse import parse_qsl, urlencode

from payments.channels import http
from payments.channels.aggregator.errors import ERROR_CODES
from payments.channels.aggregator.settlement import AggregatorExport
from payments.channels.aggregator.wire import (
    PAY_TYPES,
    SIGN_TYPE,
    TRADE_SUCCESS,
    md5_sign,
    md5_verify,
    parse_beijing,
    parse_money,
    yuan,
)
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
    QueryResult,
    RefundRequest,
    RefundResult,
)


class AggregatorBackend(ChannelBackend):
    """One merchant at an epay aggregator: ``merchant_id`` is the ``pid`` and the credential
    ``key`` the MD5 merchant key. Which methods it serves is the account's ``methods``.

    MD5 is weak and the notice arrives by GET, so a notice is only trusted after its sign,
    pid and amount check out AND the aggregator's order query says the same trade is paid
    for the same money (docs/channels/aggregator.md)."""

    code: ClassVar[str] = "aggregator"
    methods: ClassVar[tuple[str, ...]] = tuple(PAY_TYPES)
    display_name: ClassVar[str] = "易支付聚合 epay aggregator"
    supports_close: ClassVar[bool] = False  # epay offers no close call; trades just lapse
    error_codes: ClassVar[Mapping[str, ErrorSpec]] = ERROR_CODES

    # -- plumbing ----------------------------------------------------------------------------
    def _url(self, name: str) -> str:
        return self.account.base_url.rstrip("/") + "/" + name

    @property
    def _key(self) -> str:
        key = self.account.credentials.get("key")
        if not key:
            raise ChannelDeclined(
                f"aggregator account {self.account.code!r} has no key credential",
                code="MISCONFIGURED",
            )
        return str(key)

    def signed(self, params: Mapping[str, str]) -> dict[str, str]:
        data = {k: v for k, v in params.items() if v}
        data["sign"] = md5_sign(data, self._key)
        data["sign_type"] = SIGN_TYPE
        return data

    def _json(self, response, what: str) -> dict[str, Any]:
        if response.status_code != 200:
            raise ChannelUnavailable(
                f"the aggregator answered HTTP {response.status_code} to {what}",
                code=f"HTTP_{response.status_code}",
            )
        try:
            answer = json.loads(response.content.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise ChannelUnavailable(
                f"the aggregator's answer to {what} is not JSON", code="BAD_RESPONSE"
            ) from None
        if not isinstance(answer, dict):
            raise ChannelUnavailable(
                f"the aggregator's answer to {what} is not an object", code="BAD_RESPONSE"
            )
        return answer

    def _api(self, act: str, params: Mapping[str, str], *, post: bool = False) -> dict:
        """``api.php?act=…``: authenticated by pid and key (epay's v1 query API)."""
        query = {"act": act, "pid": self.account.merchant_id, "key": self._key, **params}
        if post:
            response = http.send(
                self.account.base_url,
                "POST",
                self._url(f"api.php?act={act}"),
                idempotent=True,
                data=query,
            )
        else:
            response = http.send(
                self.account.base_url, "GET", self._url("api.php"), idempotent=True, params=query
            )
        return self._json(response, f"act={act}")

    # -- paying --------------------------------------------------------------------------------
    def create(self, request: CreateRequest) -> CreateResult:
        """Desktop: ``mapi.php`` (QR or pay URL from the API); phone and unknown devices: a
        signed ``submit.php`` link the buyer's browser opens (the page jump)."""
        if request.currency != "CNY":
            raise ChannelDeclined(
                f"epay takes CNY, not {request.currency}", code="TYPE_NOT_SUPPORTED"
            )
        pay_type = PAY_TYPES.get(request.method)
        if pay_type is None:
            raise ChannelDeclined(
                f"epay has no type for method {request.method!r}", code="TYPE_NOT_SUPPORTED"
            )
        order = {
            "pid": self.account.merchant_id,
            "type": pay_type,
            "out_trade_no": request.out_trade_no,
            "notify_url": self.account.notify_url,
            "return_url": request.return_url or self.account.return_url,
            "name": (request.subject or request.out_trade_no)[:127],
            "money": yuan(request.amount),
        }
        if request.client.device != "desktop":
            link = f"{self._url('submit.php')}?{urlencode(self.signed(order))}"
            return CreateResult(action=Action(type="redirect", url=link))
        params = self.signed(
            {**order, "clientip": request.client.ip or "127.0.0.1", "device": "pc"}
        )
        answer = self._json(
            http.send(self.account.base_url, "POST", self._url("mapi.php"), data=params),
            "mapi.php",
        )
        if str(answer.get("code")) != "1":
            raise ChannelDeclined(
                f"the aggregator refused the order: {answer.get('msg')}", code="REFUSED", raw=answer
            )
        trade_no = str(answer.get("trade_no", ""))
        if answer.get("qrcode"):
            qr = str(answer["qrcode"])
            return CreateResult(action=Action(type="qr", url=qr, qr=qr), channel_trade_no=trade_no)
        if answer.get("payurl"):
            return CreateResult(
                action=Action(type="redirect", url=str(answer["payurl"])), channel_trade_no=trade_no
            )
        raise ChannelUnavailable("mapi.php answered without payurl or qrcode", code="BAD_RESPONSE")

    def parse_notification(self, *, headers: Mapping[str, str], body: bytes) -> Notice:
        """The GET notice (its query string is the body): sign, pid, status, then the order
        query must confirm the same trade paid for the same money before it is believed."""
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            raise NotificationRejected("malformed notification: not a query string") from None
        params = dict(pairs)
        if len(params) != len(pairs):
            raise NotificationRejected("malformed notification: repeated parameters")
        for name in ("pid", "trade_no", "out_trade_no", "type", "money", "trade_status", "sign"):
            if not params.get(name):
                raise NotificationRejected(f"malformed notification: missing {name}")
        if params.get("sign_type", SIGN_TYPE).upper() != SIGN_TYPE:
            raise NotificationRejected(f"unsupported sign_type {params['sign_type']!r}")
        key = self.account.credentials.get("key")
        if not key:
            raise NotificationRejected(f"account {self.account.code!r} has no key to verify with")
        if not md5_verify(params, str(key)):
            raise NotificationRejected("bad signature: the notice does not verify with the key")
        if params["pid"] != self.account.merchant_id:
            raise NotificationRejected(
                f"notice for pid {params['pid']!r}, not this account's {self.account.merchant_id!r}"
            )
        if params["trade_status"] != TRADE_SUCCESS:
            raise NotificationRejected(f"unknown trade_status {params['trade_status']!r}")
        try:
            amount = parse_money(params["money"])
        except ValueError as exc:
            raise NotificationRejected(f"malformed notification: {exc}") from None
        confirmed = self.query(out_trade_no=params["out_trade_no"])
        if confirmed.outcome != "succeeded":
            raise NotificationRejected(
                f"the order query says {params['out_trade_no']!r} is {confirmed.outcome}, "
                "not paid: the notice is not believed"
            )
        if confirmed.amount != amount or confirmed.channel_trade_no != params["trade_no"]:
            raise NotificationRejected(
                f"the order query ({confirmed.amount}, {confirmed.channel_trade_no!r}) "
                f"contradicts the notice ({amount}, {params['trade_no']!r})"
            )
        return Notice(
            kind="payment",
            out_trade_no=params["out_trade_no"],
            outcome="succeeded",
            amount=amount,
            currency="CNY",
            merchant_id=params["pid"],
            channel_trade_no=params["trade_no"],
            occurred_at=confirmed.paid_at,
            raw=params,
        )

    def notification_reply(self, *, accepted: bool, message: str = "") -> NotifyReply:
        """epay stops re-sending on the literal ``success``."""
        return NotifyReply(status=200, body=b"success" if accepted else b"fail")

    def query(self, *, out_trade_no: str, channel_trade_no: str = "") -> QueryResult:
        """``api.php?act=order``: ``status`` 1 is paid, 0 waiting; an order the aggregator
        does not know yet is still pending (the page jump opens it)."""
        answer = self._api(
            "order",
            {"out_trade_no": out_trade_no} if out_trade_no else {"trade_no": channel_trade_no},
        )
        if str(answer.get("code")) != "1":
            return QueryResult(outcome="pending", error_code="NOT_FOUND", raw=answer)
        if str(answer.get("pid", self.account.merchant_id)) != self.account.merchant_id or (
            out_trade_no and answer.get("out_trade_no") != out_trade_no
        ):
            raise ChannelUnavailable(
                "the order query answered about another order", code="BAD_RESPONSE"
            )
        try:
            amount = parse_money(str(answer.get("money", "")))
        except ValueError:
            raise ChannelUnavailable(
                "the order query's money is not an amount", code="BAD_RESPONSE"
            ) from None
        paid = str(answer.get("status")) == "1"
        return QueryResult(
            outcome="succeeded" if paid else "pending",
            amount=amount,
            currency="CNY",
            channel_trade_no=str(answer.get("trade_no", "")),
            paid_at=parse_beijing(str(answer.get("endtime", ""))) if paid else None,
            raw=answer,
        )

    # -- refunds -------------------------------------------------------------------------------
    def refund(self, request: RefundRequest) -> RefundResult:
        """``api.php?act=refund`` (offered by most epay deployments), keyed by
        ``out_refund_no`` so a repeat answers the same refund."""
        answer = self._api(
            "refund",
            {
                "out_trade_no": request.out_trade_no,
                "money": yuan(request.amount),
                "out_refund_no": request.refund_no,
            },
            post=True,
        )
        if str(answer.get("code")) == "1":
            return RefundResult(
                outcome="succeeded", channel_refund_no=str(answer.get("refund_no", "")), raw=answer
            )
        return RefundResult(outcome="failed", error_code="REFUSED", raw=answer)

    # -- settlement ----------------------------------------------------------------------------
    def download_settlement(self, day: dt.date) -> bytes:
        """The day's export (``api.php?act=bill``), exactly as served."""
        query = {
            "act": "bill",
            "pid": self.account.merchant_id,
            "key": self._key,
            "date": day.isoformat(),
        }
        response = http.send(
            self.account.base_url, "GET", self._url("api.php"), idempotent=True, params=query
        )
        if response.status_code != 200 or not response.content.startswith(b"# epay export"):
            raise ChannelUnavailable(
                f"the aggregator's export answered HTTP {response.status_code}",
                code=f"HTTP_{response.status_code}",
            )
        return response.content

    @classmethod
    def open_settlement(cls, stream: IO[bytes], *, merchant_id: str = "") -> AggregatorExport:
        return AggregatorExport(stream, merchant_id=merchant_id)

"""The epay aggregator backend: creation by page jump (``submit.php``) or API (``mapi.php``),
the GET notification confirmed by an order query, refunds and the daily export — in the MD5
protocol (v1) or, where the account chooses it, the SHA256withRSA one (v2, ``api/pay/*``)."""

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
    RSA_SIGN_TYPE,
    SIGN_TYPE,
    SIGN_TYPES,
    TRADE_SUCCESS,
    md5_sign,
    md5_verify,
    parse_beijing,
    parse_money,
    rsa_sign,
    rsa_verify,
    timestamp_fresh,
    unix_timestamp,
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
    """One merchant at an epay aggregator: ``merchant_id`` is the ``pid``. Which methods it
    serves is the account's ``methods``. The credentials choose the protocol:
    ``sign_type`` ``MD5`` (the default, v1) signs with the merchant ``key``; ``RSA`` (v2)
    signs with ``merchant_private_key`` and verifies notices and answers with
    ``platform_public_key`` (PEM or bare base64, as the aggregator's console shows them).

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

    def _secret(self, name: str) -> str:
        value = self.account.credentials.get(name)
        if not value:
            raise ChannelDeclined(
                f"aggregator account {self.account.code!r} has no {name} credential",
                code="MISCONFIGURED",
            )
        return str(value)

    @property
    def _key(self) -> str:
        return self._secret("key")

    @property
    def sign_type(self) -> str:
        """The account's choice: ``MD5`` (v1, the default) or ``RSA`` (v2)."""
        value = str(self.account.credentials.get("sign_type") or SIGN_TYPE).upper()
        if value not in SIGN_TYPES:
            raise ChannelDeclined(
                f"aggregator account {self.account.code!r}: sign_type {value!r} is neither "
                "MD5 nor RSA",
                code="MISCONFIGURED",
            )
        return value

    @property
    def v2(self) -> bool:
        return self.sign_type == RSA_SIGN_TYPE

    def signed(self, params: Mapping[str, str]) -> dict[str, str]:
        """The non-empty ``params`` with ``sign`` and ``sign_type`` (v2: and ``timestamp``)."""
        data = {k: v for k, v in params.items() if v}
        if self.v2:
            data["timestamp"] = unix_timestamp(dt.datetime.now(tz=dt.UTC))
            try:
                data["sign"] = rsa_sign(data, self._secret("merchant_private_key"))
            except (ValueError, TypeError):
                raise ChannelDeclined(
                    f"aggregator account {self.account.code!r}: merchant_private_key is not an "
                    "RSA private key (PEM or base64 PKCS#8/PKCS#1)",
                    code="MISCONFIGURED",
                ) from None
            data["sign_type"] = RSA_SIGN_TYPE
        else:
            data["sign"] = md5_sign(data, self._key)
            data["sign_type"] = SIGN_TYPE
        return data

    def _v2_call(self, name: str, params: Mapping[str, str], *, idempotent: bool = True) -> dict:
        """``POST api/pay/<name>``, signed; a successful answer (``code`` 0) is believed only
        when it verifies with the platform public key and its timestamp is fresh."""
        response = http.send(
            self.account.base_url,
            "POST",
            self._url(f"api/pay/{name}"),
            idempotent=idempotent,
            data=self.signed({"pid": self.account.merchant_id, **params}),
        )
        answer = self._json(response, f"api/pay/{name}")
        if str(answer.get("code")) == "0":
            if not rsa_verify(answer, self._secret("platform_public_key")):
                raise ChannelUnavailable(
                    f"the answer to api/pay/{name} does not verify with the platform public key",
                    code="BAD_RESPONSE",
                )
            if not timestamp_fresh(answer.get("timestamp"), dt.datetime.now(tz=dt.UTC)):
                raise ChannelUnavailable(
                    f"the answer to api/pay/{name} carries a stale or no timestamp",
                    code="BAD_RESPONSE",
                )
        return answer

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
            page = "api/pay/submit" if self.v2 else "submit.php"
            link = f"{self._url(page)}?{urlencode(self.signed(order))}"
            return CreateResult(action=Action(type="redirect", url=link))
        if self.v2:
            return self._create_v2(order, request)
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

    def _create_v2(self, order: Mapping[str, str], request: CreateRequest) -> CreateResult:
        """v2 ``api/pay/create`` (``method=web``): ``pay_type`` says what ``pay_info`` is —
        a QR payload or a page to send the buyer to."""
        answer = self._v2_call(
            "create",
            {
                **order,
                "method": "web",
                "device": "pc",
                "clientip": request.client.ip or "127.0.0.1",
            },
            idempotent=False,
        )
        if str(answer.get("code")) != "0":
            raise ChannelDeclined(
                f"the aggregator refused the order: {answer.get('msg')}", code="REFUSED", raw=answer
            )
        trade_no, info = str(answer.get("trade_no", "")), str(answer.get("pay_info", ""))
        pay_type = answer.get("pay_type")
        if pay_type == "qrcode" and info:
            return CreateResult(
                action=Action(type="qr", url=info, qr=info), channel_trade_no=trade_no
            )
        if pay_type in {"jump", "urlscheme"} and info:
            return CreateResult(action=Action(type="redirect", url=info), channel_trade_no=trade_no)
        raise ChannelUnavailable(
            f"api/pay/create answered pay_type {pay_type!r}, which Cardex cannot show",
            code="BAD_RESPONSE",
        )

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
        self._verify_notice(params)
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

    def _verify_notice(self, params: Mapping[str, str]) -> None:
        """The notice must be signed the way the account chose (an MD5 notice to an RSA
        account is refused: no downgrade) and verify with the account's key."""
        try:
            expected = self.sign_type
        except ChannelDeclined as exc:
            raise NotificationRejected(str(exc)) from None
        given = params.get("sign_type", SIGN_TYPE).upper()
        if given != expected:
            raise NotificationRejected(
                f"sign_type {params.get('sign_type')!r}: this account signs with {expected}"
            )
        if expected == RSA_SIGN_TYPE:
            public_key = self.account.credentials.get("platform_public_key")
            if not public_key:
                raise NotificationRejected(
                    f"account {self.account.code!r} has no platform_public_key to verify with"
                )
            if not params.get("timestamp"):
                raise NotificationRejected("malformed notification: missing timestamp")
            if not rsa_verify(params, str(public_key)):
                raise NotificationRejected(
                    "bad signature: the notice does not verify with the platform public key"
                )
            return
        key = self.account.credentials.get("key")
        if not key:
            raise NotificationRejected(f"account {self.account.code!r} has no key to verify with")
        if not md5_verify(params, str(key)):
            raise NotificationRejected("bad signature: the notice does not verify with the key")

    def notification_reply(self, *, accepted: bool, message: str = "") -> NotifyReply:
        """epay stops re-sending on the literal ``success``."""
        return NotifyReply(status=200, body=b"success" if accepted else b"fail")

    def query(self, *, out_trade_no: str, channel_trade_no: str = "") -> QueryResult:
        """``api.php?act=order``: ``status`` 1 is paid, 0 waiting; an order the aggregator
        does not know yet is still pending (the page jump opens it). v2: ``api/pay/query``,
        ``code`` 0, its answer signed by the platform."""
        which = {"out_trade_no": out_trade_no} if out_trade_no else {"trade_no": channel_trade_no}
        if self.v2:
            answer, found = self._v2_call("query", which), "0"
        else:
            answer, found = self._api("order", which), "1"
        if str(answer.get("code")) != found:
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
        ``out_refund_no`` so a repeat answers the same refund. v2: ``api/pay/refund``."""
        refund = {
            "out_trade_no": request.out_trade_no,
            "money": yuan(request.amount),
            "out_refund_no": request.refund_no,
        }
        if self.v2:
            answer, done = self._v2_call("refund", refund), "0"
        else:
            answer, done = self._api("refund", refund, post=True), "1"
        if str(answer.get("code")) == done:
            return RefundResult(
                outcome="succeeded", channel_refund_no=str(answer.get("refund_no", "")), raw=answer
            )
        return RefundResult(outcome="failed", error_code="REFUSED", raw=answer)

    # -- settlement ----------------------------------------------------------------------------
    def download_settlement(self, day: dt.date) -> bytes:
        """The day's export (``api.php?act=bill``), exactly as served. It is keyed by the MD5
        merchant key in either protocol (v2 defines no export), so a v2 account that wants
        its export reconciled keeps ``key`` in its credentials too."""
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

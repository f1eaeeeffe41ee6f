"""The WeChat Pay backend: Native, H5 and JSAPI orders, verified notifications and answers,
queries, closing, refunds and the bill download (CHANNELS.md §2)."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import time
import zlib
from collections.abc import Mapping
from typing import IO, Any, ClassVar
from urllib.parse import quote, urlencode, urlsplit

from cryptography.exceptions import InvalidTag

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
    QueryResult,
    RefundRequest,
    RefundResult,
    from_minor,
    to_minor,
)
from payments.channels.wechatpay import jsapi
from payments.channels.wechatpay.errors import ERROR_CODES
from payments.channels.wechatpay.settlement import WechatBill
from payments.channels.wechatpay.wire import (
    BEIJING,
    EVENTS,
    MAX_CLOCK_SKEW,
    PROBE_PREFIX,
    REFUND_STATUS,
    TRADE_STATE,
    authorization,
    decrypt_resource,
    normalise_headers,
    path_segment,
    verify_message,
)


class WechatPayBackend(ChannelBackend):
    """WeChat Pay APIv3, direct merchant (普通商户).

    Credentials (the ChannelAccount's encrypted dict): ``private_key`` (merchant API private
    key, apiclient_key.pem), ``serial_no`` (the merchant API certificate's serial number),
    ``apiv3_key`` (32 characters), and either ``platform_public_key`` + ``platform_public_key_id``
    (微信支付公钥 mode, ``PUB_KEY_ID_…``) or ``platform_certificates`` (serial → PEM).
    ``merchant_id`` is the mchid, ``app_id`` the appid bound to it.
    """

    # Largest genuine notice: JSON with the encrypted resource, ~1 KB.
    max_notification_bytes = 16 * 1024
    # Inside WeChat's browser it pays by JSAPI (the WeixinJSBridge), the only way there.
    pays_inside_apps = frozenset({"wechat"})

    code: ClassVar[str] = "wechatpay"
    methods: ClassVar[tuple[str, ...]] = ("wechatpay",)
    display_name: ClassVar[str] = "微信支付 WeChat Pay"
    error_codes: ClassVar[Mapping[str, ErrorSpec]] = ERROR_CODES

    # -- credentials ---------------------------------------------------------------------------
    def _credential(self, name: str) -> str:
        value = self.account.credentials.get(name)
        if not value:
            raise ChannelDeclined(
                f"WeChat Pay account {self.account.code!r} has no {name} credential",
                code="MISCONFIGURED",
            )
        return str(value)

    def platform_keys(self) -> dict[str, str]:
        """Platform verification keys by ``Wechatpay-Serial``."""
        found: dict[str, str] = {}
        creds = self.account.credentials
        if creds.get("platform_public_key") and creds.get("platform_public_key_id"):
            found[str(creds["platform_public_key_id"])] = str(creds["platform_public_key"])
        for serial, pem in dict(creds.get("platform_certificates") or {}).items():
            found[str(serial).upper()] = str(pem)
        return found

    def verify_platform_signature(
        self, headers: Mapping[str, str], body: bytes, *, now: float | None = None
    ) -> None:
        """Check ``Wechatpay-*`` headers over ``TIMESTAMP\\nNONCE\\nBODY\\n`` (§2.2); raise
        ValueError naming the problem (missing header, unknown serial, stale, bad signature)."""
        found = normalise_headers(headers)
        for name in (
            "wechatpay-timestamp",
            "wechatpay-nonce",
            "wechatpay-signature",
            "wechatpay-serial",
        ):
            if not found.get(name):
                raise ValueError(f"missing {name.title()} header")
        signature = found["wechatpay-signature"]
        if signature.startswith(PROBE_PREFIX):
            raise ValueError("bad signature: a WECHATPAY/SIGNTEST probe")
        serial = found["wechatpay-serial"]
        keys = self.platform_keys()
        key = keys.get(serial) or keys.get(serial.upper())
        if key is None:
            raise ValueError(f"unknown platform key serial {serial!r}")
        try:
            stamp = int(found["wechatpay-timestamp"])
        except ValueError:
            raise ValueError("malformed Wechatpay-Timestamp header") from None
        if abs((time.time() if now is None else now) - stamp) >= MAX_CLOCK_SKEW:
            raise ValueError(f"stale timestamp {stamp}: 5 minutes or more from now")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("body is not UTF-8") from None
        if not verify_message(f"{stamp}\n{found['wechatpay-nonce']}\n{text}\n", signature, key):
            raise ValueError("bad signature: does not verify with the WeChat Pay platform key")

    # -- transport -----------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return self.account.base_url.rstrip("/") + path

    def send(
        self,
        method: str,
        url: str,
        *,
        body: Mapping[str, Any] | None = None,
        idempotent: bool = False,
        verify: bool = True,
    ) -> tuple[int, bytes]:
        """One signed call; 2xx answers are verified, 4xx become ChannelDeclined with WeChat's
        ``code`` (429 → ChannelUnavailable); 5xx and transport failures are raised by http.send."""
        text = (
            json.dumps(dict(body), ensure_ascii=False, separators=(",", ":"))
            if body is not None
            else ""
        )
        headers = {
            "Accept": "application/json",
            "Authorization": authorization(
                mchid=self.account.merchant_id,
                serial_no=self._credential("serial_no"),
                private_key=self._credential("private_key"),
                method=method,
                url=url,
                body=text,
            ),
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        parts = urlsplit(url)
        response = http.send(
            f"{parts.scheme}://{parts.netloc}",
            method,
            url,
            idempotent=idempotent,
            content=text.encode("utf-8") if body is not None else None,
            headers=headers,
        )
        if 200 <= response.status_code < 300:
            if verify:
                try:
                    self.verify_platform_signature(response.headers, response.content)
                except ValueError as exc:
                    raise ChannelUnavailable(
                        f"WeChat Pay's answer to {method} {parts.path} is not trusted: {exc}",
                        code="RESPONSE_SIGNATURE_INVALID",
                    ) from None
            return response.status_code, response.content
        try:
            error = json.loads(response.content or b"{}")
        except ValueError:
            error = {}
        code = str(error.get("code") or f"HTTP_{response.status_code}")
        message = f"WeChat Pay {method} {parts.path}: {error.get('message') or code}"
        if response.status_code == 429:
            raise ChannelUnavailable(message, code=code, raw=error)
        raise ChannelDeclined(message, code=code, raw=error)

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        idempotent: bool = False,
    ) -> dict[str, Any]:
        _, content = self.send(method, self.url(path), body=body, idempotent=idempotent)
        if not content:
            return {}
        try:
            answer = json.loads(content)
        except ValueError:
            raise ChannelUnavailable(
                f"WeChat Pay's answer to {path} is not JSON", code="BAD_RESPONSE"
            ) from None
        return answer if isinstance(answer, dict) else {}

    # -- paying --------------------------------------------------------------------------------
    def create(self, request: CreateRequest) -> CreateResult:
        """JSAPI inside WeChat's browser; else native (QR) by default, H5 on phones when the
        buyer's IP is known (§2.5)."""
        if request.currency != "CNY":
            raise ChannelDeclined(
                f"WeChat Pay takes CNY, not {request.currency}", code="CURRENCY_NOT_SUPPORTED"
            )
        body: dict[str, Any] = {
            "appid": self.account.app_id,
            "mchid": self.account.merchant_id,
            "description": (request.subject or request.out_trade_no)[:127],
            "out_trade_no": request.out_trade_no,
            "time_expire": request.expires_at.astimezone(BEIJING).isoformat(timespec="seconds"),
            "notify_url": self.account.notify_url,
            "amount": {"total": to_minor(request.amount), "currency": "CNY"},
        }
        if jsapi.in_wechat(request.client.user_agent):
            return self._create_jsapi(request, body)
        if request.client.device == "phone" and request.client.ip:
            body["scene_info"] = {"payer_client_ip": request.client.ip, "h5_info": {"type": "Wap"}}
            answer = self.call("POST", "/v3/pay/transactions/h5", body=body)
            h5_url = str(answer.get("h5_url", ""))
            if not h5_url:
                raise ChannelUnavailable(
                    "WeChat Pay H5 answered without an h5_url", code="BAD_RESPONSE"
                )
            return_url = request.return_url or self.account.return_url
            if return_url:  # WeChat sends the buyer back to redirect_url appended to h5_url
                h5_url += ("&" if "?" in h5_url else "?") + urlencode({"redirect_url": return_url})
            return CreateResult(action=Action(type="redirect", url=h5_url))
        answer = self.call("POST", "/v3/pay/transactions/native", body=body)
        code_url = str(answer.get("code_url", ""))
        if not code_url:
            raise ChannelUnavailable(
                "WeChat Pay native answered without a code_url", code="BAD_RESPONSE"
            )
        return CreateResult(action=Action(type="qr", url=code_url, qr=code_url))

    def _create_jsapi(self, request: CreateRequest, order: dict[str, Any]) -> CreateResult:
        """``POST /v3/pay/transactions/jsapi`` for the openid remembered for this buyer under
        the account's app id; the page then calls ``getBrandWCPayRequest`` with the signed
        parameters in ``Action.widget``. An openid WeChat refuses is forgotten, so the next
        visit asks WeChat's OAuth again."""
        payers = jsapi.payers()
        openid = payers.openid(buyer_ref=request.buyer_ref, app_id=self.account.app_id)
        body = jsapi.jsapi_body(order, openid)
        try:
            answer = self.call("POST", "/v3/pay/transactions/jsapi", body=body)
        except ChannelDeclined as exc:
            if exc.code == "OPENID_MISMATCH":
                payers.forget(buyer_ref=request.buyer_ref, app_id=self.account.app_id)
            raise
        prepay_id = str(answer.get("prepay_id", ""))
        if not prepay_id:
            raise ChannelUnavailable(
                "WeChat Pay JSAPI answered without a prepay_id", code="BAD_RESPONSE"
            )
        params = jsapi.bridge_parameters(
            app_id=self.account.app_id,
            prepay_id=prepay_id,
            private_key=self._credential("private_key"),
        )
        return CreateResult(
            action=Action(type="widget", widget={"bridge": jsapi.BRIDGE, "request": params})
        )

    # -- OAuth (snsapi_base), for JSAPI ---------------------------------------------------------
    def oauth_authorize_url(self, *, redirect_uri: str, state: str) -> str:
        return jsapi.authorize_url(self.account, redirect_uri=redirect_uri, state=state)

    def oauth_openid(self, code: str) -> str:
        return jsapi.exchange_code(self.account, code)

    def parse_notification(self, *, headers: Mapping[str, str], body: bytes) -> Notice:
        """Verify the platform signature and freshness (§2.2), decrypt the resource with the
        APIv3 key (§2.3), and check the merchant (and app) are this account's."""
        try:
            self.verify_platform_signature(headers, body)
        except ValueError as exc:
            raise NotificationRejected(str(exc)) from None
        try:
            envelope = json.loads(body)
            event = str(envelope["event_type"])
            resource = envelope["resource"]
            if not isinstance(resource, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise NotificationRejected(
                "malformed notification: not a WeChat Pay event envelope"
            ) from None
        if event not in EVENTS:
            raise NotificationRejected(f"unknown event type {event!r}")
        if resource.get("algorithm") != "AEAD_AES_256_GCM":
            raise NotificationRejected(
                f"unsupported resource algorithm {resource.get('algorithm')!r}"
            )
        apiv3_key = self.account.credentials.get("apiv3_key")
        if not apiv3_key:
            raise NotificationRejected(
                f"account {self.account.code!r} has no apiv3_key to decrypt with"
            )
        try:
            plaintext = decrypt_resource(
                ciphertext=str(resource.get("ciphertext", "")),
                nonce=str(resource.get("nonce", "")),
                associated_data=str(resource.get("associated_data") or ""),
                apiv3_key=str(apiv3_key),
            )
            data = json.loads(plaintext)
            if not isinstance(data, dict):
                raise TypeError
        except (InvalidTag, ValueError, TypeError):
            raise NotificationRejected(
                "cannot decrypt the resource with the APIv3 key (wrong key or tampered)"
            ) from None
        mchid = str(data.get("mchid", ""))
        if self.account.merchant_id and mchid != self.account.merchant_id:
            raise NotificationRejected(
                f"notification for another merchant: mchid {mchid!r}, "
                f"expected {self.account.merchant_id!r}"
            )
        try:
            if event == "TRANSACTION.SUCCESS":
                return self._transaction_notice(data)
            return self._refund_notice(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise NotificationRejected(f"malformed {event} resource: {exc}") from None

    def _transaction_notice(self, data: Mapping[str, Any]) -> Notice:
        if self.account.app_id and data.get("appid") and data["appid"] != self.account.app_id:
            raise NotificationRejected(
                f"notification for appid {data['appid']!r}, "
                f"not this account's {self.account.app_id!r}"
            )
        state = str(data["trade_state"])
        if state not in TRADE_STATE:
            raise NotificationRejected(f"unknown trade_state {state!r}")
        amount = data["amount"]
        return Notice(
            kind="payment",
            out_trade_no=str(data["out_trade_no"]),
            outcome=TRADE_STATE[state],
            amount=from_minor(int(amount["total"])),
            currency=str(amount.get("currency") or "CNY"),
            merchant_id=str(data["mchid"]),
            channel_trade_no=str(data.get("transaction_id", "")),
            occurred_at=_rfc3339(data.get("success_time")),
            error_code="" if state == "SUCCESS" else state,
            raw=dict(data),
        )

    def _refund_notice(self, data: Mapping[str, Any]) -> Notice:
        status = str(data["refund_status"])
        if status not in REFUND_STATUS:
            raise NotificationRejected(f"unknown refund_status {status!r}")
        amount = data["amount"]
        return Notice(
            kind="refund",
            out_trade_no=str(data["out_trade_no"]),
            outcome=REFUND_STATUS[status],
            amount=from_minor(int(amount["refund"])),
            currency=str(amount.get("currency") or "CNY"),
            merchant_id=str(data["mchid"]),
            channel_trade_no=str(data.get("transaction_id", "")),
            refund_no=str(data["out_refund_no"]),
            channel_refund_no=str(data.get("refund_id", "")),
            occurred_at=_rfc3339(data.get("success_time")),
            error_code="" if status == "SUCCESS" else status,
            raw=dict(data),
        )

    def notification_reply(self, *, accepted: bool, message: str = "") -> NotifyReply:
        """204 without a body stops the retries; a 4xx with ``{"code":"FAIL",…}`` keeps them
        (§2.3)."""
        if accepted:
            return NotifyReply(status=204, body=b"", content_type="application/json")
        body = json.dumps(
            {"code": "FAIL", "message": message or "失败"}, ensure_ascii=False
        ).encode("utf-8")
        return NotifyReply(status=400, body=body, content_type="application/json")

    def query(self, *, out_trade_no: str, channel_trade_no: str = "") -> QueryResult:
        mchid = quote(self.account.merchant_id, safe="")
        if out_trade_no:
            path = f"/v3/pay/transactions/out-trade-no/{path_segment(out_trade_no)}?mchid={mchid}"
        else:
            path = f"/v3/pay/transactions/id/{path_segment(channel_trade_no)}?mchid={mchid}"
        try:
            answer = self.call("GET", path, idempotent=True)
        except ChannelDeclined as exc:
            if exc.code == "ORDER_NOT_EXIST":  # the create never reached WeChat Pay
                return QueryResult(outcome="failed", error_code=exc.code, raw=exc.raw or {})
            raise
        state = str(answer.get("trade_state", ""))
        amount = answer.get("amount") or {}
        return QueryResult(
            outcome=TRADE_STATE.get(state, "unknown"),
            amount=from_minor(int(amount["total"])) if "total" in amount else None,
            currency=str(amount.get("currency", "")),
            channel_trade_no=str(answer.get("transaction_id", "")),
            paid_at=_rfc3339(answer.get("success_time")),
            error_code="" if TRADE_STATE.get(state) in ("succeeded", "pending") else state,
            raw=answer,
        )

    def close(self, *, out_trade_no: str, channel_trade_no: str = "") -> None:
        """``POST …/out-trade-no/{no}/close`` (204); an order WeChat never saw needs no closing."""
        try:
            self.call(
                "POST",
                f"/v3/pay/transactions/out-trade-no/{path_segment(out_trade_no)}/close",
                body={"mchid": self.account.merchant_id},
                idempotent=True,
            )
        except ChannelDeclined as exc:
            if exc.code != "ORDER_NOT_EXIST":
                raise

    # -- refunds -------------------------------------------------------------------------------
    def refund(self, request: RefundRequest) -> RefundResult:
        """``POST /v3/refund/domestic/refunds`` keyed by ``out_refund_no`` (= refund_no). WeChat
        usually answers PROCESSING; REFUND.SUCCESS (or the refund query) completes it."""
        body: dict[str, Any] = {
            "out_trade_no": request.out_trade_no,
            "out_refund_no": request.refund_no,
            "notify_url": self.account.notify_url,
            "amount": {
                "refund": to_minor(request.amount),
                "total": to_minor(request.total_amount),
                "currency": "CNY",
            },
        }
        if request.reason:
            body["reason"] = request.reason[:80]
        try:
            answer = self.call("POST", "/v3/refund/domestic/refunds", body=body, idempotent=True)
        except ChannelDeclined as exc:
            return RefundResult(outcome="failed", error_code=exc.code, raw=exc.raw or {})
        return _refund_result(answer)

    def query_refund(self, request: RefundRequest) -> RefundResult:
        try:
            answer = self.call(
                "GET",
                f"/v3/refund/domestic/refunds/{path_segment(request.refund_no)}",
                idempotent=True,
            )
        except ChannelDeclined as exc:
            return RefundResult(outcome="failed", error_code=exc.code, raw=exc.raw or {})
        return _refund_result(answer)

    # -- settlement ----------------------------------------------------------------------------
    def download_settlement(self, day: dt.date) -> bytes:
        """``GET /v3/bill/tradebill`` (ALL, GZIP), then the signed GET of ``download_url``
        (answers are not signed); the SHA-1 is checked over the uncompressed bill (§2.5).
        A day without trades raises ChannelDeclined ``NO_STATEMENT_EXIST``, as WeChat does."""
        query = urlencode({"bill_date": day.isoformat(), "bill_type": "ALL", "tar_type": "GZIP"})
        answer = self.call("GET", f"/v3/bill/tradebill?{query}", idempotent=True)
        url = str(answer.get("download_url", ""))
        if not url:
            raise ChannelUnavailable(
                "WeChat Pay answered without a download_url", code="BAD_RESPONSE"
            )
        _, content = self.send("GET", url, idempotent=True, verify=False)
        if str(answer.get("hash_type", "SHA1")).upper() == "SHA1" and answer.get("hash_value"):
            try:
                plain = gzip.decompress(content) if content[:2] == b"\x1f\x8b" else content
            except (OSError, EOFError, zlib.error):
                raise ChannelUnavailable(
                    "the downloaded bill is not valid gzip", code="BILL_HASH_MISMATCH"
                ) from None
            if hashlib.sha1(plain).hexdigest().lower() != str(answer["hash_value"]).lower():
                raise ChannelUnavailable(
                    "the downloaded bill does not match its SHA-1", code="BILL_HASH_MISMATCH"
                )
        return content

    @classmethod
    def open_settlement(cls, stream: IO[bytes], *, merchant_id: str = "") -> WechatBill:
        """The bill text (gzip or plain, BOM or not, CRLF or LF). With ``merchant_id`` a bill
        of another mchid is refused."""
        return WechatBill.open(stream, merchant_id=merchant_id)


def _refund_result(answer: Mapping[str, Any]) -> RefundResult:
    status = str(answer.get("status", ""))
    return RefundResult(
        outcome=REFUND_STATUS.get(status, "pending"),
        channel_refund_no=str(answer.get("refund_id", "")),
        error_code="" if status in ("SUCCESS", "PROCESSING") else status,
        raw=dict(answer),
    )


def _rfc3339(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None

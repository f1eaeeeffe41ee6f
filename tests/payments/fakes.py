"""A scriptable in-process channel for platform tests: it follows the contract exactly,
signs its notifications with HMAC, and does what the test tells it to."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import defaultdict, deque
from decimal import Decimal

from payments.channels.base import (
    Action,
    ChannelBackend,
    ChannelDeclined,
    ChannelTimeout,
    ChannelUnavailable,
    CreateResult,
    ErrorSpec,
    Notice,
    NotificationRejected,
    NotifyReply,
    QueryResult,
    RefundResult,
)

SECRET = "fake-secret"


class FakeBackend(ChannelBackend):
    code = "fake"
    methods = ("alipay", "wechatpay", "card")
    error_codes = {
        "NO_MONEY": ErrorSpec(
            "final", False, "余额不足", "Insufficient funds", "换张卡", "Try another card"
        ),
        "SOFT": ErrorSpec("failover", True, "渠道繁忙", "Channel busy"),
    }
    # per account code: queue of create outcomes ("ok", "unavailable", "timeout", "decline:CODE")
    script: dict[str, deque] = defaultdict(deque)
    # create outcomes by call order, whichever account routing picks (taken before ``script``)
    sequence: deque = deque()
    query_answers: dict[str, str] = {}  # out_trade_no -> outcome
    closed: list[str] = []
    refunds: dict[str, Decimal] = {}
    close_fails = False

    @classmethod
    def reset(cls):
        cls.script = defaultdict(deque)
        cls.sequence = deque()
        cls.query_answers = {}
        cls.closed = []
        cls.refunds = {}
        cls.close_fails = False

    def create(self, request):
        if self.sequence:
            step = self.sequence.popleft()
        else:
            step = (
                self.script[self.account.code].popleft() if self.script[self.account.code] else "ok"
            )
        if step == "unavailable":
            raise ChannelUnavailable("down", code="UNAVAILABLE")
        if step == "timeout":
            raise ChannelTimeout("slow", code="TIMEOUT")
        if step.startswith("decline:"):
            raise ChannelDeclined("declined", code=step.split(":", 1)[1])
        return CreateResult(
            action=Action(type="redirect", url=f"https://fake.example/pay/{request.out_trade_no}"),
            channel_trade_no="F" + request.out_trade_no,
        )

    def parse_notification(self, *, headers, body):
        signature = headers.get("X-Fake-Signature", "")
        if not hmac.compare_digest(signature, sign(body)):
            raise NotificationRejected("bad signature")
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise NotificationRejected(f"malformed body: {exc}") from exc
        return Notice(
            kind=data.get("kind", "payment"),
            out_trade_no=data["out_trade_no"],
            outcome=data["outcome"],
            amount=Decimal(data["amount"]),
            currency=data.get("currency", "CNY"),
            merchant_id=data.get("merchant_id", ""),
            channel_trade_no="F" + data["out_trade_no"],
            refund_no=data.get("refund_no", ""),
            error_code=data.get("error_code", ""),
        )

    def notification_reply(self, *, accepted, message=""):
        return NotifyReply(status=200 if accepted else 400, body=b"OK" if accepted else b"FAIL")

    def query(self, *, out_trade_no, channel_trade_no=""):
        outcome = self.query_answers.get(out_trade_no, "pending")
        if outcome == "error":
            raise ChannelUnavailable("query failed")
        return QueryResult(outcome=outcome, channel_trade_no="F" + out_trade_no)

    def close(self, *, out_trade_no, channel_trade_no=""):
        if self.close_fails:
            raise ChannelUnavailable("close failed")
        self.closed.append(out_trade_no)

    def refund(self, request):
        self.refunds[request.refund_no] = request.amount
        return RefundResult(outcome="succeeded", channel_refund_no="FR" + request.refund_no)

    def download_settlement(self, day):
        return b""

    @classmethod
    def open_settlement(cls, stream):
        raise AssertionError("the fake channel has no settlement files")


def sign(body: bytes) -> str:
    return hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def notification(
    out_trade_no: str, amount: str, outcome: str = "succeeded", **extra
) -> tuple[bytes, dict]:
    body = json.dumps(
        {"out_trade_no": out_trade_no, "amount": amount, "outcome": outcome, **extra}
    ).encode()
    return body, {"HTTP_X_FAKE_SIGNATURE": sign(body)}

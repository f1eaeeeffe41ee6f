"""The one contract every payment channel implements (DESIGN.md §3).

Data crossing the channel boundary is a frozen dataclass. Amounts are ``Decimal`` in major
units (yuan, dollars) with two places; conversion to a channel's own unit (fen, minor units,
"0.01" strings) happens inside the channel module only.

A backend is built from an :class:`AccountConfig` (never from a model) so it can be driven by
the platform, by the sandbox's tests and by reconciliation alike. Backends do not know whether
their ``base_url`` points at the provider or at the local sandbox.
"""

from __future__ import annotations

import abc
import datetime as dt
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, Any, ClassVar, Literal

CENT = Decimal("0.01")

ActionType = Literal["redirect", "qr", "form", "widget", "none"]
Outcome = Literal["pending", "succeeded", "failed", "closed", "unknown"]
RefundOutcome = Literal["pending", "succeeded", "failed"]


def to_minor(amount: Decimal) -> int:
    """Yuan → fen (or dollars → cents); refuses sub-cent amounts rather than rounding money."""
    quantized = amount.quantize(CENT)
    if quantized != amount:
        raise ValueError(f"amount {amount} has more than two decimal places")
    return int(quantized * 100)


def from_minor(value: int | str) -> Decimal:
    return (Decimal(int(value)) / 100).quantize(CENT)


def money(value: str | int | Decimal) -> Decimal:
    return Decimal(str(value)).quantize(CENT)


# ---------------------------------------------------------------------------------------------
# Configuration and requests


@dataclass(frozen=True)
class AccountConfig:
    """What a backend needs to talk to one provider account."""

    code: str  # the account's code (also the last segment of its notify URL)
    backend: str  # channel protocol code: alipay, wechatpay, unionpay, ecny, paypal, card, balance
    base_url: str
    merchant_id: str = ""
    app_id: str = ""
    currency: str = "CNY"
    credentials: Mapping[str, Any] = field(default_factory=dict)
    notify_url: str = ""
    return_url: str = ""


@dataclass(frozen=True)
class ClientInfo:
    ip: str = ""
    user_agent: str = ""
    device: Literal["phone", "desktop", "unknown"] = "unknown"
    language: str = ""
    region: str = ""


@dataclass(frozen=True)
class CreateRequest:
    out_trade_no: str
    amount: Decimal
    currency: str
    subject: str
    method: str
    expires_at: dt.datetime
    return_url: str = ""
    client: ClientInfo = field(default_factory=ClientInfo)
    instalments: int | None = None
    buyer_ref: str = ""  # opaque, stable id of the buyer (wallet owner, openid lookup, …)
    #: "challenge": risk stepped the payment up and the channel's own strong customer
    #: authentication (3-D Secure) must challenge the payer; "" leaves it to the channel.
    #: Only sent to backends with ``supports_three_d_secure``.
    three_d_secure: str = ""


@dataclass(frozen=True)
class Action:
    """What the checkout page must do so the buyer can pay."""

    type: ActionType
    url: str = ""  # redirect target, form action, or the page that renders the QR/widget
    qr: str = ""  # QR payload (code_url / qr_code / deeplink)
    fields: Mapping[str, str] = field(default_factory=dict)  # form post fields
    widget: Mapping[str, Any] = field(default_factory=dict)  # in-page widget params (no secrets)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type, "url": self.url}
        if self.qr:
            data["qr"] = self.qr
        if self.fields:
            data["fields"] = dict(self.fields)
        if self.widget:
            data["widget"] = dict(self.widget)
        return data


@dataclass(frozen=True)
class CreateResult:
    action: Action
    channel_trade_no: str = ""
    outcome: Outcome = "pending"  # "succeeded" only for channels that settle at once (balance)


DisputeOutcome = Literal["open", "won", "lost", "closed"]


@dataclass(frozen=True)
class DisputeFacts:
    """A provider dispute (a card chargeback, a PayPal case) as one notice tells it. The
    dispute is found again by ``(account, dispute_id)``; every event carries its whole
    current state, so applying them in any order, any number of times, converges."""

    dispute_id: str
    status: str  # the provider's own status word, shown to staff as is
    outcome: DisputeOutcome  # open; or closed for us (won), against us (lost), inquiry closed
    reason: str = ""
    #: the channel took (or holds) the disputed amount from the merchant's balance; an
    #: inquiry (Stripe's ``warning_*``) has not
    funds_withdrawn: bool = True
    evidence_due_by: dt.datetime | None = None
    #: what the channel charges for the dispute so far (net of a fee it returned); None when
    #: the notice does not say
    fee: Decimal | None = None
    lost_amount: Decimal | None = None  # what the buyer got back when lost (default: amount)


@dataclass(frozen=True)
class Notice:
    """A verified, normalised notification (or query answer) about one attempt, refund or
    provider dispute (``dispute`` set; ``amount`` is the disputed amount)."""

    kind: Literal["payment", "refund", "dispute"]
    out_trade_no: str
    outcome: Outcome | RefundOutcome
    amount: Decimal  # for refunds: the refund's amount
    currency: str
    merchant_id: str = ""
    channel_trade_no: str = ""
    refund_no: str = ""
    channel_refund_no: str = ""
    occurred_at: dt.datetime | None = None
    error_code: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict)
    dispute: DisputeFacts | None = None


@dataclass(frozen=True)
class NotifyReply:
    """The exact HTTP answer a channel requires to stop retrying (or to retry)."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain"


@dataclass(frozen=True)
class QueryResult:
    outcome: Outcome
    amount: Decimal | None = None
    currency: str = ""
    channel_trade_no: str = ""
    paid_at: dt.datetime | None = None
    error_code: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RefundRequest:
    refund_no: str
    out_trade_no: str
    channel_trade_no: str
    amount: Decimal
    total_amount: Decimal  # the original payment's amount (several channels want it)
    currency: str
    reason: str = ""
    #: what an earlier answer for this refund returned as ``channel_refund_no`` (for queries)
    channel_refund_no: str = ""


@dataclass(frozen=True)
class RefundResult:
    outcome: RefundOutcome
    channel_refund_no: str = ""
    error_code: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SettlementLine:
    """One data line of a settlement file, normalised.

    ``amount`` is always positive; ``kind`` says the direction. ``fee`` is what the channel
    charged on this line: positive for a charge, negative for a fee returned on a refund.
    """

    line_no: int
    kind: Literal["payment", "refund"]
    out_trade_no: str
    channel_trade_no: str
    amount: Decimal
    fee: Decimal
    currency: str
    occurred_at: dt.datetime | None = None
    refund_no: str = ""
    status: str = "succeeded"
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FileTotals:
    """What the file says about itself (footer / summary lines / trailer records)."""

    merchant_id: str
    day: dt.date | None
    payments: int | None = None
    refunds: int | None = None
    lines: int | None = None
    gross: Decimal | None = None
    refunded: Decimal | None = None
    fees: Decimal | None = None


def peek_stream(stream: IO[bytes], size: int) -> tuple[bytes, IO[bytes]]:
    """The first bytes of a stream without consuming them; returns them with the stream to
    read from next (the same one, or a buffered wrapper when it cannot seek). Parsers use it
    to tell a ZIP or gzip download from bare bill text."""
    peek = getattr(stream, "peek", None)
    if callable(peek):
        return peek(size)[:size], stream
    try:
        seekable = bool(stream.seekable())
    except (AttributeError, ValueError):
        seekable = False
    if seekable:
        position = stream.tell()
        head = stream.read(size)
        stream.seek(position)
        return head, stream
    buffered = io.BufferedReader(_RawAdapter(stream))
    return buffered.peek(size)[:size], buffered


class _RawAdapter(io.RawIOBase):
    """Lets io.BufferedReader (and its peek) wrap any readable byte stream."""

    def __init__(self, stream: IO[bytes]):
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class SettlementFile(abc.ABC):
    """A parsed file: iterate ``lines()`` once (streaming); ``totals`` is known after that
    (or before, for formats that put the summary first). ``check()`` compares the file's own
    totals with the sums of its lines and raises :class:`SettlementFileError`."""

    @abc.abstractmethod
    def lines(self) -> Iterator[SettlementLine]: ...

    @property
    @abc.abstractmethod
    def totals(self) -> FileTotals: ...


class ReadOnceSettlementFile(SettlementFile):
    """A bill read in one pass from a stream that may not seek (a ZIP entry, a gzip stream).
    Subclasses set ``self._totals`` at the end of ``_parse`` and name the stream errors that
    mean corrupt or truncated input."""

    _read_errors: tuple[type[BaseException], ...] = (EOFError, OSError)
    _read_error_message = "the bill stream is corrupt or truncated"
    _totals: FileTotals | None = None
    _consumed = False

    @property
    def totals(self) -> FileTotals:
        if self._totals is None:
            raise SettlementFileError("totals are known only after reading every line")
        return self._totals

    def check(self) -> FileTotals:
        """Read the whole file (if not yet done) and return its verified totals."""
        if not self._consumed:
            for _ in self.lines():
                pass
        return self.totals

    def lines(self) -> Iterator[SettlementLine]:
        if self._consumed:
            raise SettlementFileError("the bill has already been read")
        self._consumed = True
        try:
            yield from self._parse()
        except self._read_errors as exc:
            raise SettlementFileError(f"{self._read_error_message}: {exc}") from None

    @abc.abstractmethod
    def _parse(self) -> Iterator[SettlementLine]: ...


class ReplayableSettlementFile(SettlementFile):
    """A report that can be read again when its stream seeks; ``totals`` reads it through
    when nobody has yet. Subclasses implement ``_parse`` and set ``self._totals``."""

    _replay_error = "the report stream cannot be read twice"

    def __init__(self, stream: IO[bytes], *, merchant_id: str | None = None):
        self._stream = stream
        self._merchant_id = merchant_id
        self._totals: FileTotals | None = None
        self._started = False
        try:
            self._start = stream.tell() if stream.seekable() else None
        except (AttributeError, OSError):
            self._start = None

    @property
    def totals(self) -> FileTotals:
        if self._totals is None:
            for _line in self.lines():
                pass
        if self._totals is None:
            raise SettlementFileError("the report ended without its totals")
        return self._totals

    def lines(self) -> Iterator[SettlementLine]:
        if self._started:
            if self._start is None:
                raise SettlementFileError(self._replay_error)
            self._stream.seek(self._start)
        self._started = True
        return self._parse()

    @abc.abstractmethod
    def _parse(self) -> Iterator[SettlementLine]: ...


# ---------------------------------------------------------------------------------------------
# Errors


class ChannelError(Exception):
    """The channel refused or failed. ``code`` is the channel's own code, looked up in the
    ErrorCode table to decide failover and the buyer-facing reason."""

    def __init__(self, message: str, *, code: str = "", raw: Any = None):
        super().__init__(message)
        self.code = code
        self.raw = raw


class ChannelUnavailable(ChannelError):
    """Could not reach the channel, or it answered 5xx/garbage before accepting anything."""


class ChannelTimeout(ChannelError):
    """No answer in time: the outcome is unknown and must be queried before moving on."""


class ChannelDeclined(ChannelError):
    """A business refusal (insufficient funds, risk, limits…)."""


class NotificationRejected(Exception):
    """A notification we must refuse: bad signature, stale timestamp, malformed body, another
    merchant. The message names the problem; nothing is applied."""


class SettlementFileError(Exception):
    """A settlement file that cannot be trusted; ``line_no`` points at the problem if known."""

    def __init__(self, message: str, *, line_no: int | None = None):
        super().__init__(f"line {line_no}: {message}" if line_no else message)
        self.line_no = line_no


@dataclass(frozen=True)
class ErrorSpec:
    """Default mapping of one channel code (seeded into the editable ErrorCode table)."""

    action: Literal["failover", "final", "step_up", "query"]
    counts_against_channel: bool
    reason_zh: str
    reason_en: str
    guidance_zh: str = ""
    guidance_en: str = ""

    @classmethod
    def of(
        cls,
        action: Literal["failover", "final", "step_up", "query"],
        counts: bool,
        zh: str,
        en: str,
        gzh: str = "",
        gen: str = "",
    ) -> ErrorSpec:
        """Positional shorthand for the long error tables in the channel modules."""
        return cls(
            action=action,
            counts_against_channel=counts,
            reason_zh=zh,
            reason_en=en,
            guidance_zh=gzh,
            guidance_en=gen,
        )


def header_map(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers by lower-case dashed name, whether given as HTTP headers (``Stripe-Signature``)
    or as Django META keys (``HTTP_STRIPE_SIGNATURE``)."""
    found: dict[str, str] = {}
    for key, value in headers.items():
        name = str(key).lower().replace("_", "-")
        if name.startswith("http-"):
            name = name[5:]
        found[name] = str(value)
    return found


# ---------------------------------------------------------------------------------------------
# The backend


class ChannelBackend(abc.ABC):
    """One provider protocol. Subclasses set ``code`` and ``methods`` and implement every
    operation; a concrete subclass with a ``code`` is found by ``registry`` (it walks the
    subclasses), so the contract knows nothing of the registry."""

    code: ClassVar[str]
    methods: ClassVar[tuple[str, ...]]
    display_name: ClassVar[str] = ""
    supports_close: ClassVar[bool] = True
    #: True where the channel can be asked to challenge the payer with 3-D Secure
    #: (``CreateRequest.three_d_secure``): risk's step-up then runs at the channel.
    supports_three_d_secure: ClassVar[bool] = False
    #: True for the internal wallet: money comes from the buyer's wallet, not a channel
    #: receivable, and the backend posts the capture entry itself (same journal key).
    settles_from_wallet: ClassVar[bool] = False
    #: foreign currencies an account of this channel may charge besides its own: none for
    #: the CNY-only wallets, a list, or None for any ISO currency (card acquirers)
    charge_currencies: ClassVar[frozenset[str] | None] = frozenset()
    #: the in-app browsers (``wechat``, ``alipay``: payments.client's ``in_app``) inside which
    #: this backend opens the app's own wallet there. WeChat's browser refuses every other
    #: WeChat Pay page (H5, a QR to scan), so inside it WeChat Pay is routed only to backends
    #: that name ``wechat`` here (JSAPI)
    pays_inside_apps: ClassVar[frozenset[str]] = frozenset()
    #: default error-code table: channel code → ErrorSpec
    error_codes: ClassVar[Mapping[str, ErrorSpec]] = {}
    #: the largest notification body accepted, in bytes: a generous multiple of the
    #: provider's largest genuine notice; anything bigger is refused before it is stored
    #: (docs/security.md)
    max_notification_bytes: ClassVar[int] = 64 * 1024

    def __init__(self, account: AccountConfig):
        self.account = account

    # -- paying --------------------------------------------------------------------------------
    @abc.abstractmethod
    def create(self, request: CreateRequest) -> CreateResult:
        """Open the attempt at the channel; raise ChannelUnavailable / ChannelTimeout /
        ChannelDeclined on failure."""

    @abc.abstractmethod
    def parse_notification(self, *, headers: Mapping[str, str], body: bytes) -> Notice:
        """Verify and normalise an inbound notification; raise NotificationRejected."""

    def notification_reply(self, *, accepted: bool, message: str = "") -> NotifyReply:
        """The body the channel needs to stop (accepted) or keep (not accepted) retrying."""
        return NotifyReply(
            status=200 if accepted else 400, body=b"success" if accepted else b"fail"
        )

    @abc.abstractmethod
    def query(self, *, out_trade_no: str, channel_trade_no: str = "") -> QueryResult:
        """Ask the channel what became of an attempt."""

    def close(self, *, out_trade_no: str, channel_trade_no: str = "") -> None:
        """Close an unpaid attempt so the buyer can no longer pay it (where supported)."""

    # -- refunds -------------------------------------------------------------------------------
    @abc.abstractmethod
    def refund(self, request: RefundRequest) -> RefundResult:
        """Request a (partial) refund; idempotent by ``refund_no`` at the channel."""

    def query_refund(self, request: RefundRequest) -> RefundResult:
        """Default: repeating an idempotent refund request answers its current state."""
        return self.refund(request)

    # -- settlement ----------------------------------------------------------------------------
    @abc.abstractmethod
    def download_settlement(self, day: dt.date) -> bytes:
        """The day's settlement file exactly as the channel delivers it."""

    @classmethod
    @abc.abstractmethod
    def open_settlement(cls, stream: IO[bytes]) -> SettlementFile:
        """Parse a settlement file (the download as delivered, or its bare detail file)."""

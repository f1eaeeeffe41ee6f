"""What the sandbox cashier page calls a trade: the method the buyer chose and the merchant
account serving it ("支付宝 · 经由 Bank aggregated QR"), never the protocol underneath.

A bank or epay aggregator serving Alipay runs on another channel's protocol (the e-CNY bank's
aggregated API, epay), so the channel code ("ecny") and its wallet's wording say nothing true
to the buyer. The merchant's attempt for the trade knows both the method and the account; a
trade opened without one (a channel test talking to the simulator directly) falls back on
the pay type the trade was opened with and the account registered for that merchant id.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from config.prepared import PreparedRead
from payments.models import Attempt, ChannelAccount, Method
from payments.sandbox.core import SandboxProvider
from payments.sandbox.models import SandboxTrade

#: pay types as the multi-method providers write them on the trade (the bank's ``payMethod``,
#: epay's ``type``), by the buyer's method
PAY_TYPES = {
    "ALIPAY": Method.ALIPAY,
    "WECHAT": Method.WECHATPAY,
    "UNIONPAY": Method.UNIONPAY,
    "ECNY": Method.ECNY,
    "alipay": Method.ALIPAY,
    "wxpay": Method.WECHATPAY,
    "qqpay": Method.QQPAY,
}

#: the decline choices every wallet-like provider offers, worded with the buyer's method
DECLINE_LABELS = {
    "insufficient_funds": gettext_lazy("%(method)s balance too low"),
    "phone_mismatch": gettext_lazy(
        "The %(method)s account's phone number or ID does not match its registration"
    ),
    "risk": gettext_lazy("Declined by %(method)s risk control"),
    "timeout": gettext_lazy("The payer did not finish paying with %(method)s"),
}


@dataclass(frozen=True)
class Decline:
    key: str
    label: str
    code: str  # the provider's own error code, shown to whoever tests the integration


@dataclass(frozen=True)
class CashierLabels:
    method: str  # the buyer's method, translated ("支付宝")
    account: str  # the merchant's account serving it ("Bank aggregated QR (Alipay/WeChat)")
    declines: tuple[Decline, ...]

    @property
    def heading(self) -> str:
        """``支付宝 · 经由 <account>`` / ``Alipay · via <account>``."""
        if not self.account:
            return self.method
        return _("%(method)s · via %(account)s") % {
            "method": self.method,
            "account": self.account,
        }


# the two values shown, not the attempt's and account's every column; every cashier page
# reads them, so compiled once per connection
_METHOD_AND_ACCOUNT = PreparedRead(
    lambda out_trade_no, channel, merchant_id: (
        Attempt.objects.filter(
            out_trade_no=out_trade_no, account__backend=channel, account__merchant_id=merchant_id
        )
        .order_by("-pk")
        .values_list("method", "account__name")[:1]
    ),
    out_trade_no=str,
    channel=str,
    merchant_id=str,
)


def cashier_labels(trade: SandboxTrade, provider: SandboxProvider) -> CashierLabels:
    """The labels of ``trade``'s cashier page, in the active language."""
    named = _METHOD_AND_ACCOUNT.first(
        out_trade_no=trade.out_trade_no, channel=trade.channel, merchant_id=trade.merchant_id
    )
    if named is not None:
        method, account = named
    else:
        method = _trade_method(trade)
        account = (
            ChannelAccount.objects.filter(backend=trade.channel, merchant_id=trade.merchant_id)
            .values_list("name", flat=True)
            .first()
            or ""
        )
    label = str(Method(method).label) if method in Method.values else method
    return CashierLabels(
        method=label,
        account=account,
        declines=tuple(
            Decline(
                reason.key,
                str(DECLINE_LABELS[reason.key] % {"method": label})
                if reason.key in DECLINE_LABELS
                else reason.label,
                reason.code,
            )
            for reason in provider.declines
        ),
    )


def _trade_method(trade: SandboxTrade) -> str:
    """The buyer's method as the trade itself records it: its pay type, else its channel."""
    pay_type = trade.extra.get("payMethod") or trade.extra.get("type")
    if pay_type in PAY_TYPES:
        return PAY_TYPES[pay_type]
    return trade.channel

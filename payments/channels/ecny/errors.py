"""Error codes of the acquirer API (defined by this adapter's protocol; see
docs/channels/ecny.md) and the ones that say the bank did not process the call."""

from __future__ import annotations

from payments.channels.base import (
    ErrorSpec,
)

_spec = ErrorSpec.of


# The bank reports the declines of every wallet it aggregates with the same codes, so the
# buyer-facing texts name no particular wallet.
_OTHER_ZH, _OTHER_EN = (
    "请换一个钱包或银行卡，或选择其他支付方式。",
    "Use another wallet or card, or choose another payment method.",
)

ERROR_CODES: dict[str, ErrorSpec] = {
    "BALANCE_NOT_ENOUGH": _spec(
        "final",
        False,
        "钱包余额不足",
        "Your wallet balance is too low",
        "请先为钱包充值或换一张银行卡，或换一种支付方式。",
        "Top up the wallet or pick another card in it, or choose another method.",
    ),
    "WALLET_INFO_MISMATCH": _spec(
        "final",
        False,
        "钱包绑定的手机号或实名信息不一致",
        "The wallet's phone number or ID does not match its registration",
        "请使用本人实名的钱包，或换一种支付方式。",
        "Use a wallet registered in your own name, or choose another method.",
    ),
    "WALLET_LIMIT_EXCEEDED": _spec(
        "final",
        False,
        "超出钱包单笔或日累计支付限额",
        "The payment is over the wallet's limit",
        "请升级钱包等级或换一种支付方式。",
        "Upgrade the wallet level or choose another method.",
    ),
    "WALLET_STATUS_ERROR": _spec(
        "final",
        False,
        "钱包状态异常（冻结或注销）",
        "The wallet is frozen or closed",
        _OTHER_ZH,
        _OTHER_EN,
    ),
    "RISK_REJECT": _spec(
        "final",
        False,
        "交易被风险控制拒绝",
        "The payment was declined by risk control",
        _OTHER_ZH,
        _OTHER_EN,
    ),
    "PAY_TIMEOUT": _spec(
        "final",
        False,
        "用户支付超时",
        "The payment timed out while waiting for you",
        "请重新发起支付。",
        "Please start the payment again.",
    ),
    "ORDER_EXISTS": _spec(
        "failover", True, "商户订单号重复", "The order number was already used for another order"
    ),
    "ORDER_NOT_EXIST": _spec("query", False, "订单不存在", "The bank has no such order"),
    "ORDER_PAID": _spec("final", False, "订单已支付", "The order is already paid"),
    "ORDER_CLOSED": _spec(
        "final",
        False,
        "订单已关闭",
        "The order is closed",
        "请重新下单。",
        "Please place the order again.",
    ),
    "ORDER_NOT_PAID": _spec(
        "final", False, "订单未支付，不能退款", "The order is not paid and cannot be refunded"
    ),
    "REFUND_AMOUNT_EXCEED": _spec(
        "final", False, "退款金额超过可退金额", "The refund is larger than what is left to refund"
    ),
    "REFUND_CONFLICT": _spec(
        "final",
        False,
        "退款单号已用于不同的退款",
        "The refund number was already used for a different refund",
    ),
    "REFUND_NOT_EXIST": _spec("query", False, "退款不存在", "The bank has no such refund"),
    "BILL_NOT_EXIST": _spec("final", False, "对账单不存在", "No reconciliation file for that day"),
    "SIGN_ERROR": _spec("failover", True, "验签失败", "The bank could not verify our signature"),
    "PARAM_ERROR": _spec("failover", True, "参数错误", "The bank rejected a request parameter"),
    "TIMESTAMP_EXPIRED": _spec(
        "failover", True, "请求时间超出允许范围", "Our clock is too far from the bank's"
    ),
    "MER_NOT_EXIST": _spec("failover", True, "商户不存在", "The merchant is not known to the bank"),
    "APPID_MISMATCH": _spec(
        "failover", True, "APPID与商户不匹配", "The APPID does not belong to this merchant"
    ),
    "SYSTEM_ERROR": _spec(
        "failover",
        True,
        "银行系统繁忙",
        "The bank's system is busy",
        "请稍后再试或换一种支付方式。",
        "Try again later or choose another method.",
    ),
    "UNSUPPORTED_CURRENCY": _spec(
        "failover",
        False,
        "该银行渠道仅支持人民币",
        "This bank channel accepts CNY only",
        "请换一种支付方式。",
        "Choose another payment method.",
    ),
    "PAY_METHOD_NOT_OPEN": _spec(
        "failover",
        True,
        "商户未在收单银行开通该支付方式",
        "The merchant has not opened this wallet at the acquiring bank",
        "请换一种支付方式。",
        "Choose another payment method.",
    ),
    "UNSUPPORTED_METHOD": _spec(
        "failover",
        False,
        "该银行渠道不支持这种支付方式",
        "This bank channel does not serve this payment method",
        "请换一种支付方式。",
        "Choose another payment method.",
    ),
}
#: codes that say the bank did not process the call: retry later / fail over, money untouched
SYSTEM_CODES = frozenset(
    {
        "SYSTEM_ERROR",
        "SIGN_ERROR",
        "PARAM_ERROR",
        "TIMESTAMP_EXPIRED",
        "MER_NOT_EXIST",
        "APPID_MISMATCH",
    }
)

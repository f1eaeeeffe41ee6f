"""ACP respCode values: which mean success, "ask again" or "the system, not the money",
and the table of what each one means for the payment and the buyer (CHANNELS.md §3.3)."""

from __future__ import annotations

from payments.channels.base import (
    ErrorSpec,
)

SUCCESS_CODES = frozenset({"00", "A6"})  # A6 = 有缺陷的成功 (official demo treats it as paid)
UNKNOWN_CODES = frozenset({"03", "04", "05"})  # §3.3: result unknown → query again
#: synchronous codes that say nothing about the money: keep the request pending and retry
SYSTEM_CODES = frozenset({"02", "06", "10", "11", "13", "31", "32", "37", "39", "43", "99"})

_spec = ErrorSpec.of


_OTHER_CARD_ZH, _OTHER_CARD_EN = (
    "请换一张银联卡，或选择其他支付方式。",
    "Try another UnionPay card, or choose another payment method.",
)

#: ACP response codes (平台接入接口规范 第5部分 附录 应答码; public copy of the table in
#: CHANNELS.md §3.3 sources). Buyer-side refusals do not count against the channel.
ERROR_CODES: dict[str, ErrorSpec] = {
    "01": _spec(
        "failover",
        True,
        "交易失败，详情请咨询95516",
        "UnionPay refused the transaction",
        "请稍后再试或换一种支付方式。",
        "Try again later or choose another method.",
    ),
    "02": _spec(
        "failover",
        True,
        "系统未开放或暂时关闭，请稍后再试",
        "UnionPay is closed or temporarily unavailable",
    ),
    "03": _spec(
        "query",
        True,
        "交易通讯超时，请发起查询交易",
        "UnionPay timed out; the result is being checked",
    ),
    "04": _spec(
        "query",
        True,
        "交易状态未明，请查询对账结果",
        "The result is not known yet; it is being checked",
    ),
    "05": _spec(
        "query",
        False,
        "交易已受理，请稍后查询交易结果",
        "Accepted by UnionPay; the result follows shortly",
    ),
    "06": _spec("failover", True, "系统繁忙，请稍后再试", "UnionPay is busy"),
    "10": _spec("failover", True, "报文格式错误", "UnionPay rejected the message format"),
    "11": _spec("failover", True, "验证签名失败", "UnionPay could not verify our signature"),
    "12": _spec("query", False, "重复交易", "This order was already sent to UnionPay"),
    "13": _spec("failover", True, "报文交易要素缺失", "A required field was missing"),
    "30": _spec(
        "final",
        False,
        "交易未通过，请尝试使用其他银联卡支付或联系95516",
        "The card was not accepted",
        _OTHER_CARD_ZH,
        _OTHER_CARD_EN,
    ),
    "31": _spec(
        "failover", True, "商户状态不正确", "The merchant account is not active at UnionPay"
    ),
    "32": _spec(
        "failover", True, "无此交易权限", "The merchant account may not make this transaction"
    ),
    "33": _spec(
        "failover",
        False,
        "交易金额超限",
        "The amount is over UnionPay's limit for this merchant",
        "请换一种支付方式。",
        "Choose another payment method.",
    ),
    "34": _spec("query", False, "查无此交易", "UnionPay has no record of this order yet"),
    "35": _spec(
        "final",
        False,
        "原交易不存在或状态不正确",
        "The original payment cannot be refunded in its current state",
    ),
    "36": _spec(
        "final", False, "与原交易信息不符", "The refund does not match the original payment"
    ),
    "37": _spec(
        "failover", True, "已超过最大查询次数或操作过于频繁", "Too many requests to UnionPay"
    ),
    "38": _spec(
        "final",
        False,
        "银联风险受限",
        "UnionPay's risk control declined the payment",
        _OTHER_CARD_ZH,
        _OTHER_CARD_EN,
    ),
    "39": _spec(
        "failover",
        True,
        "交易不在受理时间范围内",
        "UnionPay does not accept this transaction at this time",
    ),
    "45": _spec(
        "final",
        False,
        "原交易已被成功退货或已被成功撤销",
        "The payment was already refunded or cancelled",
    ),
    "60": _spec(
        "final",
        False,
        "交易失败，详情请咨询您的发卡行",
        "Your bank declined the payment",
        "请联系发卡行，或换一张卡。",
        "Contact your bank, or use another card.",
    ),
    "61": _spec(
        "final",
        False,
        "输入的卡号无效，请确认后输入",
        "The card number is not valid",
        "请核对卡号后重试。",
        "Check the card number and try again.",
    ),
    "62": _spec(
        "failover",
        False,
        "交易失败，发卡银行不支持该商户，请更换其他银行卡",
        "Your bank does not support this merchant",
        _OTHER_CARD_ZH,
        _OTHER_CARD_EN,
    ),
    "63": _spec(
        "final",
        False,
        "卡状态不正确",
        "The card is blocked or not active",
        _OTHER_CARD_ZH,
        _OTHER_CARD_EN,
    ),
    "64": _spec(
        "final",
        False,
        "卡上的余额不足",
        "Insufficient funds on the card",
        "余额不足——请换一张卡或其他支付方式。",
        "Balance too low — try another card or method.",
    ),
    "65": _spec(
        "final",
        False,
        "输入的密码、有效期或CVN2有误，交易失败",
        "Wrong PIN, expiry date or CVN2",
        "请核对后重试。",
        "Check the details and try again.",
    ),
    "66": _spec(
        "final",
        False,
        "持卡人身份信息或手机号输入不正确，验证失败",
        "The ID or phone number does not match the bank's record",
        "请使用在银行预留的手机号，或换一张卡。",
        "Use the phone number registered with your bank, or another card.",
    ),
    "67": _spec(
        "final",
        False,
        "密码输入次数超限",
        "Too many wrong PIN attempts",
        "请稍后再试或换一张卡。",
        "Try later or use another card.",
    ),
    "68": _spec(
        "final",
        False,
        "您的银行卡暂不支持该业务，请向您的银行或95516咨询",
        "Your card does not support online payment",
        _OTHER_CARD_ZH,
        _OTHER_CARD_EN,
    ),
    "69": _spec(
        "final",
        False,
        "您的输入超时，交易失败",
        "The payment timed out while waiting for you",
        "请重新发起支付。",
        "Please start the payment again.",
    ),
    "71": _spec(
        "final",
        False,
        "动态口令或短信验证码校验失败",
        "The SMS code was wrong",
        "请重新获取验证码后重试。",
        "Request a new code and try again.",
    ),
    "73": _spec(
        "final", False, "支付卡已超过有效期", "The card has expired", _OTHER_CARD_ZH, _OTHER_CARD_EN
    ),
    "77": _spec(
        "final",
        False,
        "银行卡未开通认证支付",
        "The card is not enabled for online payment",
        _OTHER_CARD_ZH,
        _OTHER_CARD_EN,
    ),
    "78": _spec(
        "final",
        False,
        "发卡行交易权限受限，详情请咨询您的发卡行",
        "Your bank restricts this transaction",
        "请联系发卡行或换一张卡。",
        "Contact your bank or use another card.",
    ),
    "81": _spec(
        "final",
        False,
        "月累计交易笔数(金额)超限",
        "The card's monthly limit is reached",
        _OTHER_CARD_ZH,
        _OTHER_CARD_EN,
    ),
    "98": _spec("final", False, "文件不存在", "The settlement file does not exist (yet)"),
    "99": _spec("failover", True, "通用错误", "UnionPay general error"),
    "UNSUPPORTED_CURRENCY": _spec(
        "failover",
        False,
        "银联在线支付仅支持人民币",
        "UnionPay online accepts CNY only",
        "请换一种支付方式。",
        "Choose another payment method.",
    ),
}

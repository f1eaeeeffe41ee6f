"""Card decline codes and the acquirer's API error codes mapped to failover and to the reason
and guidance a buyer or finance reads; seeded into the editable ErrorCode table."""

from __future__ import annotations

from payments.channels.base import (
    ErrorSpec,
)

_spec = ErrorSpec.of


_OTHER_CARD_ZH, _OTHER_CARD_EN = (
    "请换一张卡或改用其他支付方式。",
    "Try another card or another payment method.",
)

CARD_ERROR_CODES: dict[str, ErrorSpec] = {
    "card_declined": _spec(
        "final",
        False,
        "发卡行拒绝了这笔交易",
        "The card was declined",
        _OTHER_CARD_ZH,
        _OTHER_CARD_EN,
    ),
    "generic_decline": _spec(
        "final",
        False,
        "发卡行拒绝了这笔交易",
        "The card was declined",
        _OTHER_CARD_ZH,
        _OTHER_CARD_EN,
    ),
    "insufficient_funds": _spec(
        "final",
        False,
        "卡内余额或额度不足",
        "The card has insufficient funds",
        _OTHER_CARD_ZH,
        _OTHER_CARD_EN,
    ),
    "do_not_honor": _spec(
        "final",
        False,
        "发卡行拒绝了这笔交易（未说明原因）",
        "The issuer declined without giving a reason",
        "请联系发卡行，或换一张卡、改用其他支付方式。",
        "Contact your bank, or use another card or method.",
    ),
    "incorrect_cvc": _spec(
        "final",
        False,
        "卡片安全码（CVC）与发卡行记录不符",
        "The card's security code (CVC) does not match the issuer's record",
        "请核对卡背面的三位安全码后重试。",
        "Check the 3-digit code on the back of the card and try again.",
    ),
    "incorrect_number": _spec(
        "final",
        False,
        "卡号不正确",
        "The card number is incorrect",
        "请核对卡号后重试。",
        "Check the card number and try again.",
    ),
    "expired_card": _spec(
        "final",
        False,
        "卡片已过期",
        "The card has expired",
        "请使用有效期内的卡。",
        "Use a card that has not expired.",
    ),
    "fraudulent": _spec(
        "final",
        False,
        "交易未通过风险审核",
        "The payment was declined by risk checks",
        _OTHER_CARD_ZH,
        _OTHER_CARD_EN,
    ),
    "lost_card": _spec(
        "final",
        False,
        "发卡行拒绝了这笔交易",
        "The card was declined",
        _OTHER_CARD_ZH,
        _OTHER_CARD_EN,
    ),
    "stolen_card": _spec(
        "final",
        False,
        "发卡行拒绝了这笔交易",
        "The card was declined",
        _OTHER_CARD_ZH,
        _OTHER_CARD_EN,
    ),
    "card_velocity_exceeded": _spec(
        "final",
        False,
        "超过卡片的交易次数或额度限制",
        "The card's limit was exceeded",
        _OTHER_CARD_ZH,
        _OTHER_CARD_EN,
    ),
    "authentication_required": _spec(
        "step_up",
        False,
        "发卡行要求 3-D Secure 验证",
        "The issuer requires 3-D Secure authentication",
        "请完成银行的身份验证后再付款。",
        "Complete your bank's authentication and pay again.",
    ),
    "payment_intent_authentication_failure": _spec(
        "final",
        False,
        "3-D Secure 验证未通过",
        "3-D Secure authentication failed",
        "请重新付款并完成银行验证，或改用其他支付方式。",
        "Pay again and complete the bank's check, or use another method.",
    ),
    "processing_error": _spec(
        "failover",
        True,
        "处理卡片时出错",
        "An error occurred while processing the card",
        "请稍后再试。",
        "Please try again shortly.",
    ),
    "issuer_not_available": _spec(
        "failover",
        True,
        "无法连接发卡行",
        "The card issuer could not be reached",
        "请稍后再试。",
        "Please try again shortly.",
    ),
    "abandoned": _spec(
        "final",
        False,
        "付款人未完成付款",
        "The payer did not finish paying",
        "如需购买请重新下单。",
        "Start the payment again if you still want the item.",
    ),
    "amount_too_small": _spec(
        "failover",
        False,
        "金额低于该收单渠道的最低限额",
        "The amount is below the acquirer's minimum",
    ),
    "amount_too_large": _spec(
        "final",
        False,
        "金额超过可用额度或可退金额",
        "The amount exceeds what is allowed or still refundable",
    ),
    "amount_invalid": _spec(
        "failover",
        False,
        "金额格式不符合币种要求",
        "The amount does not fit the currency's decimals",
    ),
    "charge_already_refunded": _spec(
        "final", False, "该笔付款已全额退款", "The payment is already fully refunded"
    ),
    "payment_intent_unexpected_state": _spec(
        "query", False, "支付状态已变化，需要先查询", "The payment changed state; query it first"
    ),
    "resource_missing": _spec(
        "query", False, "收单方找不到该笔交易", "The acquirer cannot find this payment"
    ),
    "parameter_missing": _spec(
        "failover", False, "请求缺少必要参数", "A required parameter is missing"
    ),
    "idempotency_error": _spec(
        "query",
        True,
        "幂等键与先前请求的参数不一致",
        "The idempotency key was reused with other parameters",
    ),
    "authentication_error": _spec(
        "failover", True, "收单接口认证失败", "The acquirer rejected our API key"
    ),
    "rate_limit": _spec(
        "failover",
        True,
        "收单接口请求过于频繁",
        "The acquirer's rate limit was reached",
        "请稍后再试。",
        "Please try again shortly.",
    ),
    "api_error": _spec(
        "failover",
        True,
        "收单方系统错误",
        "The acquirer had an internal error",
        "请稍后再试或改用其他支付方式。",
        "Try again later or use another method.",
    ),
    "TIMEOUT": _spec("query", True, "收单方响应超时", "The acquirer did not answer in time"),
    "UNAVAILABLE": _spec("failover", True, "无法连接收单方", "The acquirer could not be reached"),
}

"""Error codes (Orders v2 / Payments v2 "issue" values, OAuth errors) and what each means
for the payment and the buyer."""

from __future__ import annotations

from payments.channels.base import (
    ErrorSpec,
)

_spec = ErrorSpec.of


PAYPAL_ERROR_CODES: dict[str, ErrorSpec] = {
    "INSTRUMENT_DECLINED": _spec(
        "final",
        False,
        "PayPal 账户所选的付款方式被拒绝",
        "The funding source chosen in PayPal was declined",
        "请在 PayPal 中换一种付款方式（银行卡或余额）或改用其他支付方式。",
        "Choose another funding source in PayPal, or pay with another method.",
    ),
    "PAYER_ACTION_REQUIRED": _spec(
        "step_up",
        False,
        "PayPal 要求付款人完成验证",
        "PayPal needs the payer to complete a verification step",
        "请回到 PayPal 完成验证后再付款。",
        "Return to PayPal, complete the verification and pay again.",
    ),
    "TRANSACTION_REFUSED": _spec(
        "final",
        False,
        "PayPal 拒绝了这笔交易",
        "PayPal refused this transaction",
        "请改用其他支付方式。",
        "Please pay with another method.",
    ),
    "PAYER_CANNOT_PAY": _spec(
        "final",
        False,
        "该 PayPal 账户无法向本商户付款",
        "This PayPal account cannot pay this merchant",
        "请改用其他支付方式。",
        "Please pay with another method.",
    ),
    "PAYER_ACCOUNT_RESTRICTED": _spec(
        "final",
        False,
        "付款人的 PayPal 账户受限",
        "The payer's PayPal account is restricted",
        "请联系 PayPal 或改用其他支付方式。",
        "Contact PayPal or pay with another method.",
    ),
    "PAYER_ACCOUNT_LOCKED_OR_CLOSED": _spec(
        "final",
        False,
        "付款人的 PayPal 账户已锁定或关闭",
        "The payer's PayPal account is locked or closed",
        "请改用其他支付方式。",
        "Please pay with another method.",
    ),
    "COMPLIANCE_VIOLATION": _spec(
        "final",
        False,
        "交易未通过 PayPal 合规审查",
        "The transaction failed PayPal's compliance checks",
        "请改用其他支付方式。",
        "Please pay with another method.",
    ),
    "MAX_NUMBER_OF_PAYMENT_ATTEMPTS_EXCEEDED": _spec(
        "final",
        False,
        "付款尝试次数过多",
        "Too many payment attempts",
        "请稍后再试或改用其他支付方式。",
        "Try again later or pay with another method.",
    ),
    "ORDER_NOT_APPROVED": _spec(
        "query",
        False,
        "付款人尚未在 PayPal 确认付款",
        "The payer has not approved the order in PayPal yet",
        "请在 PayPal 页面完成付款确认。",
        "Finish approving the payment on the PayPal page.",
    ),
    "ORDER_ALREADY_CAPTURED": _spec("query", False, "订单已扣款", "The order was already captured"),
    "DUPLICATE_INVOICE_ID": _spec(
        "query",
        False,
        "该订单号已在 PayPal 付过款",
        "PayPal already holds a payment for this invoice id",
    ),
    "RESOURCE_NOT_FOUND": _spec(
        "query", False, "PayPal 找不到该订单或交易", "PayPal cannot find this order or transaction"
    ),
    "INVALID_RESOURCE_ID": _spec(
        "query", False, "PayPal 找不到该订单或交易", "PayPal cannot find this order or transaction"
    ),
    "CURRENCY_NOT_SUPPORTED": _spec(
        "failover",
        False,
        "该 PayPal 账户不支持此币种",
        "This PayPal account does not accept the currency",
        "请改用其他支付方式。",
        "Please pay with another method.",
    ),
    "DECIMAL_PRECISION": _spec(
        "failover",
        False,
        "金额小数位数不符合 PayPal 要求",
        "The amount has more decimals than PayPal allows for the currency",
    ),
    "PAYEE_ACCOUNT_RESTRICTED": _spec(
        "failover", True, "商户 PayPal 账户受限", "The merchant's PayPal account is restricted"
    ),
    "PAYEE_ACCOUNT_LOCKED_OR_CLOSED": _spec(
        "failover",
        True,
        "商户 PayPal 账户已锁定或关闭",
        "The merchant's PayPal account is locked or closed",
    ),
    "PERMISSION_DENIED": _spec(
        "failover",
        True,
        "PayPal 拒绝了商户的调用权限",
        "PayPal denied the merchant's API permission",
    ),
    "AUTHENTICATION_FAILURE": _spec(
        "failover", True, "PayPal 接口认证失败", "PayPal API authentication failed"
    ),
    "invalid_client": _spec(
        "failover", True, "PayPal 客户端凭证无效", "The PayPal client credentials are invalid"
    ),
    "RATE_LIMIT_REACHED": _spec(
        "failover",
        True,
        "PayPal 请求过于频繁",
        "PayPal rate limit reached",
        "请稍后再试。",
        "Please try again shortly.",
    ),
    "INTERNAL_SERVER_ERROR": _spec(
        "failover",
        True,
        "PayPal 系统错误",
        "PayPal internal error",
        "请稍后再试或改用其他支付方式。",
        "Try again later or use another method.",
    ),
    "CAPTURE_FULLY_REFUNDED": _spec(
        "final", False, "该笔付款已全额退款", "The payment is already fully refunded"
    ),
    "REFUND_AMOUNT_EXCEEDED": _spec(
        "final", False, "退款金额超过可退金额", "The refund exceeds the amount still refundable"
    ),
    "REFUND_TIME_LIMIT_EXCEEDED": _spec(
        "final", False, "已超过 PayPal 允许的退款期限", "PayPal's refund time limit has passed"
    ),
    "REFUND_NOT_ALLOWED": _spec(
        "final",
        False,
        "PayPal 不允许对该笔付款退款",
        "PayPal does not allow a refund of this payment",
    ),
    "PARTIAL_REFUND_NOT_ALLOWED": _spec(
        "final", False, "该笔付款不支持部分退款", "This payment cannot be partially refunded"
    ),
    "REFUND_FAILED_INSUFFICIENT_FUNDS": _spec(
        "final",
        False,
        "商户 PayPal 余额不足，无法退款",
        "The merchant's PayPal balance is too low for the refund",
        "请为 PayPal 账户充值后重试。",
        "Top up the PayPal balance and retry.",
    ),
    "TIMEOUT": _spec("query", True, "PayPal 响应超时", "PayPal did not answer in time"),
    "UNAVAILABLE": _spec("failover", True, "无法连接 PayPal", "PayPal could not be reached"),
    # The JS SDK buttons on the checkout page (payments.services.paypal_buttons): what the
    # buyer reads when they close PayPal, when the buttons fail, or when an approval does
    # not belong to this payment. None of them charges anything.
    "PAYER_CANCELLED": _spec(
        "final",
        False,
        "您关闭了 PayPal，未完成付款，没有扣款",
        "You closed PayPal before paying; nothing was charged",
        "可再次点击 PayPal 按钮付款，或换一种支付方式。",
        "Press the PayPal button to try again, or pay another way.",
    ),
    "BUTTONS_ERROR": _spec(
        "final",
        False,
        "PayPal 未能完成付款，没有扣款",
        "PayPal could not complete the payment; nothing was charged",
        "请再试一次，或换一种支付方式。",
        "Try again, or pay another way.",
    ),
    "ORDER_MISMATCH": _spec(
        "final",
        False,
        "这次 PayPal 确认不属于本笔付款，没有扣款",
        "This PayPal approval is for another payment; nothing was charged",
        "请刷新页面后用本页的 PayPal 按钮付款。",
        "Reload the page and pay with the PayPal button on it.",
    ),
    "AMOUNT_MISMATCH": _spec(
        "final",
        False,
        "PayPal 订单金额与本订单不符，没有扣款",
        "The PayPal order's amount does not match this order; nothing was charged",
        "请刷新页面后用本页的 PayPal 按钮付款。",
        "Reload the page and pay with the PayPal button on it.",
    ),
}

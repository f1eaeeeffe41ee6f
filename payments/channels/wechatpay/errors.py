"""WeChat Pay's error codes (HTTP answers' ``code``, trade and refund states) mapped to
failover and to the reason and guidance a buyer or finance reads; seeded into the editable
ErrorCode table."""

from __future__ import annotations

from collections.abc import Mapping

from payments.channels.base import (
    ErrorSpec,
)

_spec = ErrorSpec.of


ERROR_CODES: Mapping[str, ErrorSpec] = {
    # the buyer's own problems (the cashier's decline reasons)
    "NOTENOUGH": _spec(
        "final",
        False,
        "零钱或银行卡余额不足",
        "The WeChat balance or card has too little money",
        "请充值或换一张银行卡，或改用其他支付方式",
        "Top up, use another card, or use another payment method",
    ),
    "ACCOUNT_ERROR": _spec(
        "final",
        False,
        "付款账户异常（如手机号与银行预留信息不符）",
        "The paying account failed the bank's checks "
        "(e.g. phone number does not match the bank's record)",
        "请核对银行预留手机号，或改用其他支付方式",
        "Check the phone number registered with your bank, or use another payment method",
    ),
    "TRADE_ERROR": _spec(
        "final",
        False,
        "微信支付风控拒绝了本次交易",
        "WeChat Pay's risk control declined this payment",
        "请改用其他支付方式",
        "Please use another payment method",
    ),
    "USERPAYING": _spec(
        "query",
        False,
        "用户尚未完成支付（需要输入密码）",
        "The buyer has not finished paying yet",
        "请在微信中完成支付，或重新发起",
        "Finish the payment in WeChat, or start again",
    ),
    "PAYERROR": _spec(
        "final",
        False,
        "微信支付失败",
        "WeChat Pay could not take the payment",
        "请重试或改用其他支付方式",
        "Try again or use another payment method",
    ),
    "ORDER_CLOSED": _spec(
        "final",
        False,
        "订单已关闭",
        "The order was closed",
        "请重新下单",
        "Start the payment again",
    ),
    "ORDERPAID": _spec("query", False, "订单已支付", "The order is already paid"),
    "ORDER_NOT_EXIST": _spec("query", False, "订单不存在", "WeChat Pay does not know this order"),
    "OUT_TRADE_NO_USED": _spec(
        "failover", True, "商户订单号重复", "The order number was used with other details"
    ),
    "RULE_LIMIT": _spec(
        "failover",
        False,
        "业务规则限制",
        "WeChat Pay's rules refused this payment",
        "请改用其他支付方式",
        "Please use another payment method",
    ),
    "BANKERROR": _spec(
        "failover",
        True,
        "银行系统异常",
        "The bank's system failed",
        "请稍后重试",
        "Try again shortly",
    ),
    # paying inside WeChat (JSAPI): who the payer is, from WeChat's OAuth
    "OPENID_MISSING": _spec(
        "failover",
        False,
        "微信没有告诉我们付款人是谁，无法在微信内调起支付",
        "WeChat did not tell us who is paying, so WeChat Pay cannot open here",
        "请重新打开本页再试，或改用其他支付方式",
        "Reopen this page and try again, or choose another payment method",
    ),
    "OPENID_MISMATCH": _spec(
        "failover",
        False,
        "微信付款人身份与本商户的公众号不匹配",
        "WeChat's payer identity does not belong to this shop's WeChat account",
        "请重新打开本页再试（我们会重新向微信确认身份），或改用其他支付方式",
        "Reopen this page and try again (we ask WeChat again), or choose another method",
    ),
    "OAUTH_CODE": _spec(
        "final",
        False,
        "微信身份确认失败或已过期",
        "WeChat could not confirm who you are, or the confirmation expired",
        "请重新打开本页再试，或改用其他支付方式",
        "Reopen this page and try again, or choose another payment method",
    ),
    # the merchant's set-up and WeChat's own health
    "PARAM_ERROR": _spec(
        "failover", True, "请求参数错误", "WeChat Pay rejected the request's parameters"
    ),
    "INVALID_REQUEST": _spec(
        "failover", True, "请求不符合业务规则", "WeChat Pay refused the request"
    ),
    "SIGN_ERROR": _spec(
        "failover",
        True,
        "签名错误（商户私钥或证书序列号不符）",
        "WeChat Pay rejected our signature",
    ),
    "NO_AUTH": _spec(
        "failover", True, "商户无此接口权限", "The merchant may not use this WeChat Pay API"
    ),
    "APPID_MCHID_NOT_MATCH": _spec(
        "failover", True, "AppID 与商户号不匹配", "The app id does not belong to this merchant id"
    ),
    "MCH_NOT_EXISTS": _spec(
        "failover", True, "商户号不存在", "WeChat Pay does not know this merchant id"
    ),
    "FREQUENCY_LIMITED": _spec(
        "failover",
        True,
        "请求频率超限",
        "Too many requests to WeChat Pay",
        "请稍后重试",
        "Try again shortly",
    ),
    "SYSTEM_ERROR": _spec(
        "failover",
        True,
        "微信支付系统错误",
        "WeChat Pay had a system error",
        "请稍后重试",
        "Try again shortly",
    ),
    "RESPONSE_SIGNATURE_INVALID": _spec(
        "failover",
        True,
        "微信支付应答验签失败",
        "WeChat Pay's answer failed signature verification",
    ),
    "MISCONFIGURED": _spec(
        "failover",
        True,
        "微信支付渠道账户配置不完整",
        "The WeChat Pay channel account is missing credentials",
    ),
    "CURRENCY_NOT_SUPPORTED": _spec(
        "failover", False, "该微信支付账户只收人民币", "This WeChat Pay account accepts CNY only"
    ),
    # refunds
    "NOT_ENOUGH": _spec(
        "final",
        True,
        "商户账户可用余额不足，无法退款",
        "The merchant's WeChat Pay balance is too low to refund",
        "请财务充值后重试",
        "Finance must top up the account, then retry",
    ),
    "RESOURCE_NOT_EXISTS": _spec(
        "final", False, "订单或退款单不存在", "WeChat Pay does not know this order or refund"
    ),
    "USER_ACCOUNT_ABNORMAL": _spec(
        "final",
        False,
        "用户账户异常，无法原路退款",
        "The buyer's account cannot receive the refund",
        "请联系买家线下退款",
        "Refund the buyer another way",
    ),
    # bills
    "NO_STATEMENT_EXIST": _spec(
        "final", False, "账单文件不存在（当日无交易）", "No bill for that day (no trades)"
    ),
    "STATEMENT_CREATING": _spec(
        "query",
        False,
        "账单生成中",
        "The bill is still being generated",
        "次日 10 点后再下载",
        "Download after 10:00 the next day",
    ),
    "BILL_HASH_MISMATCH": _spec(
        "final", True, "账单文件摘要校验失败", "The downloaded bill does not match its SHA-1"
    ),
}

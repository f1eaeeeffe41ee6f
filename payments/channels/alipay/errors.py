"""Alipay's error codes (sub_code, or the gateway code) mapped to failover and to the
reason and guidance a buyer or finance reads; seeded into the editable ErrorCode table."""

from __future__ import annotations

from collections.abc import Mapping

from payments.channels.alipay.wire import (
    CLOSED_CODE,
    UNKNOWN_CODE,
)
from payments.channels.base import (
    ErrorSpec,
)

_spec = ErrorSpec.of


ERROR_CODES: Mapping[str, ErrorSpec] = {
    # the buyer's own problems (the cashier's decline reasons, §1 sandbox `declines`)
    "ACQ.BUYER_BALANCE_NOT_ENOUGH": _spec(
        "final",
        False,
        "买家支付宝余额不足",
        "The Alipay balance is too low",
        "请充值或在支付宝中换一张银行卡，或改用其他支付方式",
        "Top up, pick another card in Alipay, or use another payment method",
    ),
    "ACQ.BUYER_BANKCARD_BALANCE_NOT_ENOUGH": _spec(
        "final",
        False,
        "银行卡余额不足",
        "The bank card's balance is too low",
        "请在支付宝中换一张银行卡，或改用其他支付方式",
        "Choose another card in Alipay or use another payment method",
    ),
    "ACQ.ERROR_BUYER_CERTIFY_LEVEL_LIMIT": _spec(
        "final",
        False,
        "买家身份信息与银行预留信息不符（未通过实名认证）",
        "The buyer's identity or phone number does not match the bank's record",
        "请核对银行预留手机号与实名信息，或改用其他支付方式",
        "Check the phone number registered with your bank, or use another payment method",
    ),
    "ACQ.PAYMENT_REQUEST_HAS_RISK": _spec(
        "final",
        False,
        "支付宝风控拒绝了本次支付",
        "Alipay's risk control declined this payment",
        "请改用其他支付方式",
        "Please use another payment method",
    ),
    "ACQ.TRADE_HAS_CLOSE": _spec(
        "final",
        False,
        "交易已关闭（超时未支付）",
        "The trade was closed (not paid in time)",
        "请重新下单后再支付",
        "Start the payment again",
    ),
    CLOSED_CODE: _spec(
        "final",
        False,
        "支付宝未完成付款，交易已关闭",
        "The payment was not completed in Alipay and the trade is closed",
        "请重新发起支付，或改用其他支付方式",
        "Pay again, or choose another payment method",
    ),
    "ACQ.BUYER_ENABLE_STATUS_FORBID": _spec(
        "final",
        False,
        "买家支付宝账户状态异常",
        "The buyer's Alipay account is restricted",
        "请联系支付宝客服，或改用其他支付方式",
        "Contact Alipay support or use another payment method",
    ),
    "ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR": _spec(
        "final",
        False,
        "买家付款日限额超限",
        "The buyer's daily Alipay limit is reached",
        "请明天再试或改用其他支付方式",
        "Try again tomorrow or use another payment method",
    ),
    "ACQ.BUYER_SELLER_EQUAL": _spec(
        "final",
        False,
        "买卖家不能相同",
        "Buyer and seller are the same Alipay account",
        "请使用其他支付宝账户付款",
        "Pay with another Alipay account",
    ),
    "ACQ.ERROR_BALANCE_PAYMENT_DISABLE": _spec(
        "final",
        False,
        "余额支付功能已关闭",
        "Balance payments are switched off in the buyer's Alipay",
        "请在支付宝中开启余额支付或换卡支付",
        "Enable balance payments in Alipay or pay by card",
    ),
    # the trade's state
    "ACQ.TRADE_HAS_SUCCESS": _spec("query", False, "交易已支付", "The trade is already paid"),
    "ACQ.TRADE_NOT_EXIST": _spec("query", False, "交易不存在", "Alipay does not know this trade"),
    "ACQ.TRADE_STATUS_ERROR": _spec(
        "final", False, "交易状态不允许此操作", "The trade's state does not allow this"
    ),
    "ACQ.CONTEXT_INCONSISTENT": _spec(
        "failover",
        True,
        "同一商户订单号的交易信息不一致",
        "The trade was opened before with different details",
    ),
    "ACQ.TOTAL_FEE_EXCEED": _spec(
        "failover",
        False,
        "订单金额超过限额",
        "The amount is above this Alipay account's limit",
        "请改用其他支付方式或分开购买",
        "Use another payment method or split the order",
    ),
    "ACQ.EXIST_FORBIDDEN_WORD": _spec(
        "failover", False, "订单信息含违禁词", "The order description contains a forbidden word"
    ),
    # refunds
    "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL": _spec(
        "final", False, "退款金额超过可退金额", "The refund exceeds what is left to refund"
    ),
    "ACQ.TRADE_NOT_ALLOW_REFUND": _spec(
        "final", False, "当前交易不允许退款", "This trade can no longer be refunded"
    ),
    "ACQ.SELLER_BALANCE_NOT_ENOUGH": _spec(
        "final",
        True,
        "商户支付宝账户余额不足，无法退款",
        "The merchant's Alipay balance is too low to refund",
        "请财务为支付宝账户充值后重试",
        "Finance must top up the Alipay account, then retry",
    ),
    "ACQ.REASON_TRADE_BEEN_FREEZEN": _spec(
        "final", True, "交易已被冻结", "The trade is frozen by Alipay"
    ),
    "REFUND_NOT_FOUND": _spec(
        "final",
        False,
        "支付宝查无此退款（未退款成功）",
        "Alipay has no such refund (it did not go through)",
        "可用同一退款请求号重新发起退款",
        "Retrying with the same refund number is safe",
    ),
    # the merchant's set-up and Alipay's own health
    "ACQ.SYSTEM_ERROR": _spec(
        "query", True, "支付宝系统繁忙", "Alipay is busy", "稍后重试", "Try again shortly"
    ),
    "ACQ.INVALID_PARAMETER": _spec(
        "failover", True, "请求参数无效", "Alipay rejected the request's parameters"
    ),
    "ACQ.ACCESS_FORBIDDEN": _spec(
        "failover", True, "商户无权使用该接口", "The merchant may not use this Alipay API"
    ),
    "ACQ.PARTNER_ERROR": _spec(
        "failover", True, "应用 APP_ID 填写错误", "The Alipay app id is wrong"
    ),
    "isv.invalid-signature": _spec(
        "failover",
        True,
        "请求签名无效（应用私钥与公钥不匹配）",
        "Alipay rejected our signature (key mismatch)",
    ),
    "isv.invalid-app-id": _spec(
        "failover", True, "无效的 APP_ID", "Alipay does not know this app id"
    ),
    "isv.missing-signature": _spec(
        "failover", True, "请求缺少签名", "The request carried no signature"
    ),
    "isv.invalid-signature-type": _spec("failover", True, "签名类型无效", "Unsupported sign_type"),
    "isv.invalid-timestamp": _spec(
        "failover", True, "请求时间戳无效", "The request timestamp was refused"
    ),
    "isv.invalid-method": _spec("failover", True, "不存在的接口名称", "Unknown Alipay API method"),
    "isp.unknow-error": _spec(
        "query",
        True,
        "支付宝服务暂不可用",
        "Alipay is temporarily unavailable",
        "稍后重试",
        "Try again shortly",
    ),
    UNKNOWN_CODE: _spec(
        "query",
        True,
        "支付宝服务暂不可用",
        "Alipay is temporarily unavailable",
        "稍后重试",
        "Try again shortly",
    ),
    "RESPONSE_SIGNATURE_INVALID": _spec(
        "failover", True, "支付宝应答验签失败", "Alipay's answer failed signature verification"
    ),
    "MISCONFIGURED": _spec(
        "failover",
        True,
        "支付宝渠道账户配置不完整",
        "The Alipay channel account is missing credentials",
    ),
    "CURRENCY_NOT_SUPPORTED": _spec(
        "failover", False, "该支付宝账户只收人民币", "This Alipay account accepts CNY only"
    ),
    # bills
    "BILL_NOT_EXIST": _spec(
        "final",
        False,
        "账单不存在（尚未生成）",
        "The bill does not exist yet",
        "次日 9 点后再下载",
        "Download after 09:00 the next day",
    ),
    "isp.bill_not_exist": _spec(
        "final",
        False,
        "账单不存在（尚未生成）",
        "The bill does not exist yet",
        "次日 9 点后再下载",
        "Download after 09:00 the next day",
    ),
    "INVAILID_ARGUMENTS": _spec("final", False, "账单参数无效", "Invalid bill query arguments"),
}

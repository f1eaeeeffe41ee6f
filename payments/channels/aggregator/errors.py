"""The codes an epay aggregator backend raises, mapped to failover and to what a buyer reads.

epay answers ``code != 1`` with only a free-text ``msg``; the backend names those refusals
with the codes below."""

from __future__ import annotations

from collections.abc import Mapping

from payments.channels.base import ErrorSpec

_spec = ErrorSpec.of

ERROR_CODES: Mapping[str, ErrorSpec] = {
    "REFUSED": _spec(
        "failover",
        True,
        "聚合支付平台拒绝了该订单",
        "The aggregator refused the order",
        "请稍后重试，或改用其他支付方式",
        "Try again later or use another payment method",
    ),
    "TYPE_NOT_SUPPORTED": _spec(
        "failover",
        False,
        "该聚合支付账户不支持此支付方式",
        "The aggregator does not offer this method",
        "请改用其他支付方式",
        "Use another payment method",
    ),
    "MISCONFIGURED": _spec(
        "failover",
        True,
        "支付通道配置有误",
        "The payment channel is misconfigured",
        "请改用其他支付方式",
        "Use another payment method",
    ),
    "BAD_RESPONSE": _spec(
        "query",
        True,
        "支付通道返回异常",
        "The payment channel answered unexpectedly",
        "请稍后查看订单状态",
        "Check the order's status again shortly",
    ),
    "NOT_PAID": _spec(
        "final",
        False,
        "订单未支付",
        "The order was not paid",
        "请重新下单支付",
        "Place the order again to pay",
    ),
}

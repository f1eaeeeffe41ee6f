"""The identifiers UnionPay gives a completed transaction (queryId, traceNo, traceTime,
settleDate), kept on the sandbox trade so answers, notices and the file agree."""

from __future__ import annotations

import datetime as dt
import secrets

from payments.sandbox.models import SandboxTrade
from payments.sandbox.unionpay import protocol

CHANNEL = "unionpay"


def beijing(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(protocol.BEIJING)


def new_ids(moment: dt.datetime) -> dict[str, str]:
    """UnionPay's identifiers for a completed transaction: queryId = trace time (14) +
    traceNo (6) + 1 digit, as in UnionPay's own sample file."""
    local = beijing(moment)
    trace_no = f"{secrets.randbelow(10**6):06d}"
    return {
        "queryId": local.strftime("%Y%m%d%H%M%S") + trace_no + str(secrets.randbelow(10)),
        "traceNo": trace_no,
        "traceTime": local.strftime("%m%d%H%M%S"),
        "settleDate": local.strftime("%m%d"),
    }


def ensure_ids(trade: SandboxTrade) -> dict[str, str]:
    if not trade.extra.get("queryId"):
        trade.extra.update(new_ids(trade.paid_at or trade.created_at))
        trade.save(update_fields=["extra"])
    return {k: trade.extra[k] for k in ("queryId", "traceNo", "traceTime", "settleDate")}

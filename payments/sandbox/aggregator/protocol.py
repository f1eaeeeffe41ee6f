"""The simulated aggregator's own epay protocol code (independent of the backend's): the
MD5 sign over sorted, non-empty parameters, its fee, times and the export rows."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from django.utils import timezone

CHANNEL = "aggregator"
BEIJING = ZoneInfo("Asia/Shanghai")
CENT = Decimal("0.01")
#: the pay types this simulated aggregator runs (what a merchant may enable)
TYPES = ("alipay", "wxpay", "qqpay")
#: the sandbox aggregator's fee: 1 % of each payment, half-up to the fen; pro rata on refunds
FEE_RATE = Decimal("0.01")


def epay_sign(params: Mapping[str, str], key: str) -> str:
    """md5(a=1&b=2…KEY): parameters sorted by name, empty ones, sign and sign_type left out."""
    kept = []
    for name, value in sorted(params.items(), key=lambda item: item[0]):
        if name in {"sign", "sign_type"} or value in (None, ""):
            continue
        kept.append(name + "=" + str(value))
    digest = hashlib.new("md5", usedforsecurity=False)
    digest.update(("&".join(kept) + key).encode("utf-8"))
    return digest.hexdigest()


def fee_of(amount: Decimal) -> Decimal:
    return (Decimal(amount) * FEE_RATE).quantize(CENT, rounding=ROUND_HALF_UP)


def yuan(amount: Decimal) -> str:
    return format(Decimal(amount).quantize(CENT), "f")


def beijing(moment: dt.datetime | None = None) -> str:
    return (moment or timezone.now()).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")

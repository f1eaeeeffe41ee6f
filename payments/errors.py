"""Channel error codes as data: the editable ErrorCode table first, the backend's defaults
second, a safe generic answer last."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import get_language

from payments.channels.base import ErrorSpec
from payments.channels.registry import backend_class, backend_codes
from payments.models import ErrorCode

GENERIC = ErrorSpec(
    action="failover",
    counts_against_channel=True,
    reason_zh="支付渠道暂时无法完成这笔支付",
    reason_en="The payment channel could not complete this payment",
    guidance_zh="请稍后重试，或换一种支付方式。",
    guidance_en="Please try again in a moment, or choose another method.",
)
UNAVAILABLE = ErrorSpec(
    action="failover",
    counts_against_channel=True,
    reason_zh="支付渠道暂时不可用",
    reason_en="The payment channel is temporarily unavailable",
    guidance_zh="请换一种支付方式，或稍后再试。",
    guidance_en="Please choose another method, or try again later.",
)
NO_CHANNEL = ErrorSpec(
    action="final",
    counts_against_channel=False,
    reason_zh="这种支付方式暂时无法使用",
    reason_en="This payment method is not available right now",
    guidance_zh="请选择其他支付方式。",
    guidance_en="Please choose another payment method.",
)


@dataclass(frozen=True)
class BuyerMessage:
    code: str
    reason: str
    guidance: str


def error_spec(backend: str, code: str) -> ErrorSpec:
    row = ErrorCode.objects.filter(backend=backend, code=code).first()
    if row:
        return ErrorSpec(
            action=row.action,
            counts_against_channel=row.counts_against_channel,
            reason_zh=row.reason_zh,
            reason_en=row.reason_en,
            guidance_zh=row.guidance_zh,
            guidance_en=row.guidance_en,
        )
    try:
        defaults = backend_class(backend).error_codes
    except LookupError:
        defaults = {}
    return defaults.get(code) or (
        UNAVAILABLE if code in {"UNAVAILABLE", "TIMEOUT"} or code.startswith("HTTP_") else GENERIC
    )


def error_known(backend: str, code: str) -> bool:
    """Whether the code has words of its own (staff's table or the backend's defaults)."""
    if code in {"UNAVAILABLE", "TIMEOUT"} or code.startswith("HTTP_"):
        return True
    if ErrorCode.objects.filter(backend=backend, code=code).exists():
        return True
    try:
        return code in backend_class(backend).error_codes
    except LookupError:
        return False


def buyer_message(spec: ErrorSpec, code: str, language: str | None = None) -> BuyerMessage:
    english = (language or get_language() or "zh-hans").startswith("en")
    return BuyerMessage(
        code=code,
        reason=spec.reason_en if english else spec.reason_zh,
        guidance=(spec.guidance_en if english else spec.guidance_zh) or "",
    )


def buyer_messages(backend: str, language: str | None = None) -> dict[str, dict[str, str]]:
    """Every code of a backend as the buyer reads it (staff's table over the backend's
    defaults, one query): what an in-page element shows the moment the channel answers."""
    try:
        specs = dict(backend_class(backend).error_codes)
    except LookupError:
        specs = {}
    for row in ErrorCode.objects.filter(backend=backend):
        specs[row.code] = ErrorSpec(
            action=row.action,
            counts_against_channel=row.counts_against_channel,
            reason_zh=row.reason_zh,
            reason_en=row.reason_en,
            guidance_zh=row.guidance_zh,
            guidance_en=row.guidance_en,
        )
    messages = {}
    for code, spec in specs.items():
        message = buyer_message(spec, code, language)
        messages[code] = {"reason": message.reason, "guidance": message.guidance}
    return messages


def error_codes_sync() -> int:
    """Copy every backend's default codes into the table (existing rows keep staff edits)."""
    created = 0
    for backend in backend_codes():
        for code, spec in backend_class(backend).error_codes.items():
            _, was_created = ErrorCode.objects.get_or_create(
                backend=backend,
                code=code,
                defaults={
                    "action": spec.action,
                    "counts_against_channel": spec.counts_against_channel,
                    "reason_zh": spec.reason_zh,
                    "reason_en": spec.reason_en,
                    "guidance_zh": spec.guidance_zh,
                    "guidance_en": spec.guidance_en,
                },
            )
            created += was_created
    return created

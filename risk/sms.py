"""Text messages for second factors, through a pluggable sender (``settings.RISK_SMS_SENDER``,
a dotted path): a buyer without an e-mail address gets their one-time code by SMS.

* ``risk.sms.ConsoleSender`` (development): writes the message to standard output, as
  Django's console e-mail backend does. Never in production: the code is a secret.
* ``risk.sms.HttpSender``: an SMS provider's HTTP API — ``POST {RISK_SMS_URL}/v1/messages``
  with ``Authorization: Bearer {RISK_SMS_API_KEY}`` and ``{"to", "text", "sender"}``;
  ``201 {"id", "status"}``, or ``4xx {"error": {"code", "message"}}``. In sandbox mode the
  simulator at ``/sandbox/sms/`` (``risk/sms_sandbox.py``) speaks it.
* ``risk.sms.MemorySender`` (tests): keeps the messages in ``MemorySender.outbox``.
"""

from __future__ import annotations

import logging
import re
import sys
from dataclasses import dataclass

import httpx
from django.conf import settings
from django.utils.module_loading import import_string

log = logging.getLogger("risk.sms")

_NUMBER = re.compile(r"^\+?[1-9]\d{5,14}$")


class SmsError(Exception):
    """The message could not be handed to the provider; the text is never in the message."""


@dataclass(frozen=True)
class Sent:
    id: str
    to: str


def phone_number(raw: str) -> str:
    """E.164-ish: spaces, dashes, dots and brackets dropped; '' when it is not a number."""
    number = re.sub(r"[\s\-().]", "", raw or "")
    return number if _NUMBER.match(number) else ""


class ConsoleSender:
    def send(self, to: str, text: str) -> Sent:
        sys.stdout.write(f"SMS to {to}: {text}\n")
        sys.stdout.flush()
        return Sent(id="console", to=to)


class MemorySender:
    outbox: list[tuple[str, str]] = []

    def send(self, to: str, text: str) -> Sent:
        MemorySender.outbox.append((to, text))
        return Sent(id=f"memory-{len(MemorySender.outbox)}", to=to)


class HttpSender:
    """One provider HTTP API call per message, with a short timeout."""

    def send(self, to: str, text: str) -> Sent:
        base = settings.RISK_SMS_URL.rstrip("/")
        if not base:
            raise SmsError("RISK_SMS_URL is not set")
        spec = getattr(settings, "RISK_SMS_HTTP_TRANSPORT", None)
        transport = (import_string(spec) if isinstance(spec, str) else spec)() if spec else None
        try:
            with httpx.Client(timeout=settings.RISK_SMS_TIMEOUT, transport=transport) as client:
                response = client.post(
                    f"{base}/v1/messages",
                    json={"to": to, "text": text, "sender": settings.RISK_SMS_SENDER_NAME},
                    headers={"Authorization": f"Bearer {settings.RISK_SMS_API_KEY}"},
                )
        except httpx.HTTPError as exc:
            raise SmsError(f"SMS provider unreachable: {type(exc).__name__}") from exc
        if response.status_code != 201:
            try:
                code = response.json()["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = "unknown"
            raise SmsError(f"SMS provider refused the message: {response.status_code} {code}")
        return Sent(id=str(response.json().get("id", "")), to=to)


def sms_send(to: str, text: str) -> Sent:
    """Send through the configured sender. Raises ``SmsError`` (bad number, provider down)."""
    number = phone_number(to)
    if not number:
        raise SmsError("not a phone number")
    sender = import_string(settings.RISK_SMS_SENDER)()
    return sender.send(number, text)


def sms_send_quietly(to: str, text: str) -> bool:
    """For after-commit sends: a failure is logged (never the text, never the number's
    digits beyond the last four) and does not raise."""
    try:
        sms_send(to, text)
    except SmsError as exc:
        log.warning("SMS to …%s not sent: %s", phone_number(to)[-4:], exc)
        return False
    return True

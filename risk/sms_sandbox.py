"""A small simulator of an SMS provider's HTTP API (mounted at ``/sandbox/sms/`` only in
sandbox mode): ``POST v1/messages`` as ``risk.sms.HttpSender`` calls it, and an inbox a
tester (or a test) reads the codes from — ``GET inbox/?to=<number>`` (a page) and
``GET v1/messages?to=<number>`` (JSON). Messages are kept in the shared cache for an hour,
the last 20 per number."""

from __future__ import annotations

import json
import secrets
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.utils.html import escape
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from risk.sms import phone_number

KEEP_SECONDS, KEEP_MESSAGES, MAX_TEXT = 3600, 20, 670


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def _key(number: str) -> str:
    return f"sandbox:sms:{number}"


@csrf_exempt
@require_POST
def messages_create(request):
    expected = f"Bearer {settings.RISK_SMS_API_KEY}"
    if not secrets.compare_digest(request.headers.get("Authorization", ""), expected):
        return _error(401, "unauthorized", "Bad or missing API key.")
    try:
        body = json.loads(request.body)
        to, text = str(body["to"]), str(body["text"])
    except (ValueError, KeyError, TypeError):
        return _error(400, "invalid_request", 'Send JSON with "to" and "text".')
    number = phone_number(to)
    if not number:
        return _error(400, "invalid_number", "The number is not a phone number.")
    if not text.strip() or len(text) > MAX_TEXT:
        return _error(400, "invalid_text", f"The text must have 1 to {MAX_TEXT} characters.")
    message = {"id": "sm_" + secrets.token_hex(8), "to": number, "text": text, "at": time.time()}
    kept = (cache.get(_key(number)) or [])[-(KEEP_MESSAGES - 1) :] + [message]
    cache.set(_key(number), kept, KEEP_SECONDS)
    return JsonResponse({"id": message["id"], "status": "queued"}, status=201)


@require_GET
def messages_list(request):
    number = phone_number(request.GET.get("to", ""))
    if not number:
        return _error(400, "invalid_number", "Give ?to=<phone number>.")
    return JsonResponse({"messages": cache.get(_key(number)) or []})


@require_GET
def inbox(request):
    number = phone_number(request.GET.get("to", ""))
    rows = "".join(
        f"<li data-testid='sms'>{escape(m['text'])}</li>"
        for m in reversed(cache.get(_key(number)) or [])
    )
    return HttpResponse(
        f"<!doctype html><title>SMS sandbox</title><h1>SMS to {escape(number or '?')}</h1>"
        f"<ul>{rows or '<li>No messages.</li>'}</ul>"
    )


@csrf_exempt
def messages(request):
    return messages_create(request) if request.method == "POST" else messages_list(request)


urlpatterns = [
    path("v1/messages", messages, name="sandbox-sms-messages"),
    path("inbox/", inbox, name="sandbox-sms-inbox"),
]

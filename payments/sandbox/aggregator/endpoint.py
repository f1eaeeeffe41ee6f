"""What every endpoint of the simulated aggregator does before its own work, v1 and v2
alike: answer a configured fault, read the request's parameters (query string and form),
and find the merchant the request authenticates as; creation endpoints then open the trade.
The versions differ only in how a merchant authenticates (v1: MD5 sign or key; v2: RSA and a
fresh timestamp) and how they answer, so those are the parts passed in."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.html import escape

from payments.sandbox import core
from payments.sandbox.aggregator.protocol import CHANNEL
from payments.sandbox.aggregator.trades import open_trade
from payments.sandbox.models import SandboxMerchant, SandboxTrade

#: (params) -> (the merchant they authenticate as, or None and why not)
Verify = Callable[[Mapping[str, str]], tuple[SandboxMerchant | None, str]]


@dataclass(frozen=True)
class Received:
    params: dict[str, str]
    merchant: SandboxMerchant | None
    error: str


def params_of(request: HttpRequest) -> dict[str, str]:
    """epay takes its parameters by GET or POST alike; the form wins where both name one."""
    data = request.GET.dict()
    data.update(request.POST.dict())
    return data


def receive(request: HttpRequest, verify: Verify) -> Received | HttpResponse:
    """The request's parameters and merchant, or the configured fault's response."""
    fault = core.fault_response(CHANNEL)
    if fault is not None:
        return fault
    params = params_of(request)
    merchant, error = verify(params)
    return Received(params, merchant, error)


def creation(
    request: HttpRequest,
    verify: Verify,
    *,
    sign_type: str,
    opened: Callable[[SandboxTrade], HttpResponse],
    refused: Callable[[str], HttpResponse],
) -> HttpResponse:
    """A creation endpoint (page jump or API): the trade of an authenticated request, answered
    by ``opened``; a refusal (authentication or the order's fields) by ``refused``."""
    got = receive(request, verify)
    if isinstance(got, HttpResponse):
        return got
    trade = open_trade(got.merchant, got.params, sign_type=sign_type) if got.merchant else got.error
    if isinstance(trade, str):
        return refused(trade)
    return opened(trade)


def to_cashier(trade: SandboxTrade) -> HttpResponse:
    """A page jump's answer: the buyer's browser goes on to the cashier."""
    return redirect(core.provider(CHANNEL).cashier_url(trade))


def refused_page(message: str) -> HttpResponse:
    """A page jump's refusal, shown to the buyer as epay does: a bare page with the reason."""
    return HttpResponse(f"<p>{escape(message)}</p>", status=400)

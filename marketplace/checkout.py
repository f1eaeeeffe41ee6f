"""The buyer's order page: checkout, live status and the delivered codes on one page.

Thin views: the page's state comes from the selectors in ``checkout_state.py`` (the order,
its latest payment, the buyer's checkout offer); paying goes through ``order_checkout_pay``,
the same service the REST API uses; the codes through ``order_codes_reveal``; the risk check
and "check now" through the platform's ``payment_challenge_answer`` and ``attempt_query``.
Every view answers a whole page to a plain request and a fragment to an htmx request
(``request.htmx``), so the page works without JavaScript up to the channel's own page.
docs/checkout.md describes the states and the page hooks.

The page is the buyer's alone: any other user gets a 404, as if the order did not exist.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts import throttles
from marketplace.checkout_state import (
    order_checkout_state,
    order_checkout_status,
    order_latest_payment,
)
from marketplace.errors import MarketplaceError
from marketplace.models import Order, RevealAudit
from marketplace.services import (
    RevealedCode,
    order_checkout_pay,
    order_codes_reveal,
)
from payments import fx, ordering
from payments.client import client_from_request, request_ip
from payments.models import Method
from payments.presenters import latest_attempt, payment_as_dict
from payments.services import PaymentError, attempt_query, payment_challenge_answer
from payments.states import ATTEMPT_OPEN, PaymentStatus

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# Request → plain values


def _order_for(request, number: str) -> Order:
    order = (
        Order.objects.select_related("listing__brand")
        .filter(number=number, buyer=request.user)
        .first()
    )
    if order is None:
        raise Http404(_("No such order."))
    return order


def _order_url(order: Order) -> str:
    return reverse("marketplace:order_detail", args=[order.number])


# ---------------------------------------------------------------------------------------------
# What the page shows


def _reveal(request, order: Order) -> list[RevealedCode]:
    """The delivered codes; the shop's service audits each reveal (who, when, from where)."""
    return order_codes_reveal(
        order=order,
        user=request.user,
        channel=RevealAudit.Channel.WEB,
        ip=request_ip(request) or None,
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:255],
    )


def _page_context(
    request, order: Order, *, notice: str = "", fresh: bool = False
) -> dict[str, Any]:
    """The selector's page state, plus what belongs to this request: the codes' audited
    reveal, the staff-only explanation, a refusal notice."""
    page = order_checkout_state(order=order, client=client_from_request(request))
    delivered = page.state == "delivered" and order.codes_revealable
    return {
        **page.context(),
        "codes": _reveal(request, order) if delivered else [],
        "show_reasons": request.user.is_staff,
        "notice": notice,
        "fresh": fresh,
        "now": timezone.now(),
    }


def _done(request, order: Order, *, notice: str = "", fresh: bool = False) -> HttpResponse:
    """Answer a POST: for htmx the checkout body, with the status line swapped out of band so
    both stay in step; for a plain form Post/Redirect/Get."""
    if request.htmx:
        context = _page_context(request, order, notice=notice, fresh=fresh)
        return render(request, "marketplace/checkout/swap.html", context)
    if notice:
        messages.error(request, notice)
    return redirect(_order_url(order))


# ---------------------------------------------------------------------------------------------
# Views


@never_cache
@login_required
@require_GET
def order_detail(request, number: str):
    order = _order_for(request, number)
    return render(request, "marketplace/order_detail.html", _page_context(request, order))


# While the buyer watches a pending payment, its channel is asked on this cadence (within
# the providers' query limits: Alipay and WeChat Pay ask for no more than a few per second
# per trade), so a decline whose notification is slow or lost shows within seconds.
POLL_QUERY_AFTER = dt.timedelta(seconds=5)
POLL_QUERY_EVERY_SECONDS = 5


def poll_query_key(attempt_id: int) -> str:
    return f"checkout:poll-query:{attempt_id}"


def _query_in_background(attempt_id: int) -> None:
    from payments.tasks import query_attempt

    query_attempt.delay(attempt_id)


def _ask_the_channel_soon(order) -> None:
    """Queue a query of the open attempt, once per interval whoever polls (``cache.add`` is
    atomic on the shared cache); a fresh attempt is left to its notification."""
    payment = order_latest_payment(order=order)
    attempt = latest_attempt(payment) if payment else None
    if attempt is None or attempt.status not in ATTEMPT_OPEN:
        return
    if timezone.now() - attempt.created_at < POLL_QUERY_AFTER:
        return
    if cache.add(poll_query_key(attempt.pk), 1, timeout=POLL_QUERY_EVERY_SECONDS):
        try:
            _query_in_background(attempt.pk)
        except Exception:  # a broker hiccup must not break the page; beat's query covers it
            log.warning("could not queue the query of attempt %s", attempt.pk, exc_info=True)


@never_cache
@login_required
@require_GET
def order_status(request, number: str):
    """The small status fragment polled every ~2 s; when what the page shows has changed,
    the checkout body rides along out of band (codes appear without a reload)."""
    order = _order_for(request, number)
    _ask_the_channel_soon(order)
    live = order_checkout_status(order=order)
    if request.GET.get("seen") != live.key:
        return render(request, "marketplace/checkout/poll.html", _page_context(request, order))
    return render(request, "marketplace/checkout/status.html", live.context())


@never_cache
@login_required
@require_POST
@throttles.throttle(throttles.PAY)
def order_pay_view(request, number: str):
    """Start paying with the chosen method; answer its panel (QR, form, widget) in place, or
    send the buyer to the channel when the channel's flow is a redirect."""
    order = _order_for(request, number)
    method = request.POST.get("method", "")
    instalments = None
    if method == Method.CARD_INSTALMENTS:  # the plan radios belong to the instalments method
        try:
            instalments = int(request.POST.get("instalments", ""))
        except ValueError:
            instalments = None  # the service takes the plan the page preselects
    try:
        payment = order_checkout_pay(
            order=order,
            buyer=request.user,
            method=method,
            client=client_from_request(request),
            return_url=settings.SITE_URL + _order_url(order),
            instalments=instalments,
            currency=request.POST.get("currency", ""),
            seen_rates=fx.seen_rates(request.POST.get("fx_rates", "")),
        )
    except ordering.ChoiceRefused as exc:
        return _done(request, order, notice=exc.message)
    except (MarketplaceError, PaymentError) as exc:
        return _done(request, order, notice=getattr(exc, "message", "") or str(exc))
    order.refresh_from_db()
    action = (
        (payment_as_dict(payment).get("action") or {})
        if payment.status == PaymentStatus.PENDING
        else {}
    )
    # A widget with a redirect fallback (PayPal's buttons) needs JavaScript: without it the
    # buyer goes to the channel's page, as a redirect channel's would.
    no_js_redirect = not request.htmx and (action.get("widget") or {}).get("fallback") == "redirect"
    if (action.get("type") == "redirect" or no_js_redirect) and action.get("url"):
        if request.htmx:
            response = HttpResponse(status=204)
            response["HX-Redirect"] = action["url"]
            return response
        return redirect(action["url"])
    return _done(request, order, fresh=True)


@never_cache
@login_required
@require_POST
@throttles.throttle(throttles.CHALLENGE)
def order_challenge(request, number: str):
    """The buyer answers the risk check's one-time code in place."""
    order = _order_for(request, number)
    payment = order_latest_payment(order=order)
    if payment is None or payment.status != PaymentStatus.CHALLENGE:
        return _done(request, order)
    try:
        payment_challenge_answer(payment=payment, code=request.POST.get("code", ""))
    except PaymentError:
        return _done(
            request,
            order,
            notice=_("That code is not right. Check the latest e-mail and try again."),
        )
    order.refresh_from_db()
    return _done(request, order)


@never_cache
@login_required
@require_POST
def order_check(request, number: str):
    """The "check again" button: ask the channel about the open attempt now, instead of
    waiting for its notification or the background query."""
    order = _order_for(request, number)
    payment = order_latest_payment(order=order)
    attempt = latest_attempt(payment) if payment else None
    if attempt is not None and attempt.status in ATTEMPT_OPEN:
        attempt_query(attempt_id=attempt.pk)
        order.refresh_from_db()
    return _done(request, order)

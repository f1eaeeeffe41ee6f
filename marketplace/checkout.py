"""The buyer's order page: checkout, live status and the delivered codes on one page.

Thin views over the shop's and the platform's services (``order_pay``, ``order_codes_reveal``,
``payment_challenge_answer``, ``attempt_query``) and the checkout ranking
(``payments.ordering``). Every view answers a whole page to a plain request and a fragment to
an htmx request (``request.htmx``), so the page works without JavaScript up to the channel's
own page. docs/checkout.md describes the states and the page hooks.

The page is the buyer's alone: any other user gets a 404, as if the order did not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts import throttles
from marketplace.errors import MarketplaceError
from marketplace.models import Order, RevealAudit
from marketplace.services import RevealedCode, order_codes_reveal, order_pay
from payments import ordering
from payments.channels.base import ClientInfo
from payments.models import Method, Payment
from payments.presenters import latest_attempt, payment_as_dict
from payments.qr import qr_svg
from payments.services import PaymentError, attempt_query, payment_challenge_answer
from payments.states import ATTEMPT_OPEN, PaymentStatus

DELIVERED = {Order.Status.DELIVERED, Order.Status.COMPLETED, Order.Status.DISPUTED}
# While the order can still change on its own (a channel notice, a reviewer, delivery), the
# status fragment polls; once it is final the page stops asking.
LIVE = {Order.Status.AWAITING_PAYMENT, Order.Status.PAID, Order.Status.UNDER_REVIEW}
POLL_SECONDS = 2


# ---------------------------------------------------------------------------------------------
# Request → plain values


def client_ip(request) -> str:
    """The buyer's address: the entry our own proxies appended to X-Forwarded-For when
    TRUSTED_PROXY_COUNT says there are proxies (anything left of it can be forged)."""
    count = settings.TRUSTED_PROXY_COUNT
    if count > 0:
        hops = [
            h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()
        ]
        if len(hops) >= count:
            return hops[-count]
    return request.META.get("REMOTE_ADDR", "")


def _device_and_region(request) -> tuple[ordering.DeviceInfo, ordering.RegionInfo]:
    region = ordering.region_from_meta(
        request.META,
        trusted_proxy_count=settings.TRUSTED_PROXY_COUNT,
        region_header=settings.REGION_HEADER,
    )
    return ordering.device_from_meta(request.META), region


def client_info(request) -> ClientInfo:
    """What the platform (risk, the channel) is told about the buyer's browser."""
    device, region = _device_and_region(request)
    return ClientInfo(
        ip=client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:255],
        device=device.kind,
        language=get_language() or "",
        region=region.code,
    )


def _order_for(request, number: str) -> Order:
    order = (
        Order.objects.select_related("listing__brand")
        .filter(number=number, buyer=request.user)
        .first()
    )
    if order is None:
        raise Http404(_("No such order."))
    return order


def _latest_payment(order: Order) -> Payment | None:
    return (
        Payment.objects.filter(reference=order.payment_reference, buyer_id=order.buyer_id)
        .prefetch_related("attempts__account")
        .order_by("-created_at", "-pk")
        .first()
    )


def _ranking(request, order: Order) -> ordering.Ranking:
    device, region = _device_and_region(request)
    context = ordering.checkout_context(
        user=request.user,
        amount=order.amount,
        currency=order.currency,
        device=device,
        region=region,
    )
    return ordering.rank_methods(context)


def _order_url(order: Order) -> str:
    return reverse("marketplace:order_detail", args=[order.number])


# ---------------------------------------------------------------------------------------------
# What the page shows


@dataclass(frozen=True)
class Status:
    """The live status line: a state for machines (``data-state``) and words for people."""

    state: str
    label: str
    detail: str = ""


def _state(order: Order, payment: Payment | None) -> str:
    """One word for what the page is showing; the page re-renders when it changes."""
    if order.status in DELIVERED:
        return "delivered"
    if order.status == Order.Status.PAID:
        return "paid"
    if order.status == Order.Status.UNDER_REVIEW:
        return "review"
    if order.status == Order.Status.REFUNDED:
        return "refunded"
    if order.status in {Order.Status.EXPIRED, Order.Status.CANCELLED} or not order.is_payable:
        return "closed"
    if payment is None:
        return "choose"
    if payment.status == PaymentStatus.PENDING:
        return "timeout" if payment.failure_code == "TIMEOUT" else "pending"
    if payment.status == PaymentStatus.EXPIRED:
        return "timeout"
    if payment.status in {PaymentStatus.FAILED, PaymentStatus.CANCELLED}:
        return "failed"
    if payment.status in {PaymentStatus.CHALLENGE, PaymentStatus.REVIEW, PaymentStatus.BLOCKED}:
        return str(payment.status)
    if payment.is_paid:
        return "paid"
    return "choose"


def _status(order: Order, state: str, channel_label: str) -> Status:
    label = order.get_status_display()
    if state == "closed" and order.status == Order.Status.AWAITING_PAYMENT:
        label = Order.Status.EXPIRED.label  # lapsed; the release task has not caught up yet
    texts = {
        "choose": _("Choose how to pay before the reservation runs out."),
        "pending": _("Waiting for your payment with %(method)s…") % {"method": channel_label},
        "timeout": _("%(method)s did not confirm in time.") % {"method": channel_label},
        "failed": _("The payment did not go through."),
        "challenge": _("Enter the one-time code to continue."),
        "review": _("Your payment is being checked; this usually takes a few minutes."),
        "blocked": _("This payment cannot be accepted."),
        "paid": _("Payment received — delivering your codes…"),
        "delivered": _("Paid and delivered."),
        "closed": _("This order can no longer be paid."),
        "refunded": _("This order was refunded."),
    }
    return Status(state=state, label=str(label), detail=texts.get(state, ""))


def _polling(order: Order, state: str) -> bool:
    return order.status in LIVE and state not in {"closed", "blocked"}


def _key(order: Order, payment: Payment | None) -> str:
    """What the body on screen was rendered from; the poll compares it with the present."""
    if payment is None:
        return f"{order.status}:{int(order.is_payable)}"
    return f"{order.status}:{int(order.is_payable)}:{payment.public_id}:{payment.status}:{payment.failure_code}"


def _action_panel(action: dict[str, Any] | None, method_label: str) -> dict[str, Any] | None:
    """The pending payment's next step, ready for the template (QR drawn here)."""
    if not action:
        return None
    widget = action.get("widget") or {}
    panel = {
        "type": action.get("type", "none"),
        "url": action.get("url") or widget.get("url") or widget.get("hosted_url", ""),
        "qr": action.get("qr", ""),
        "fields": sorted((action.get("fields") or {}).items()),
        "widget": widget,
    }
    plan = widget.get("installments") or {}
    panel["instalments"] = (plan.get("plan") or {}).get("count") if isinstance(plan, dict) else None
    if panel["type"] == "qr" and panel["qr"]:
        panel["svg"] = qr_svg(
            panel["qr"], title=_("QR code to pay with %(method)s") % {"method": method_label}
        )
    return panel


def _reveal(request, order: Order) -> list[RevealedCode]:
    """The delivered codes; the shop's service audits each reveal (who, when, from where)."""
    return order_codes_reveal(
        order=order,
        user=request.user,
        channel=RevealAudit.Channel.WEB,
        ip=client_ip(request) or None,
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:255],
    )


def _page_context(
    request, order: Order, *, notice: str = "", fresh: bool = False
) -> dict[str, Any]:
    payment = _latest_payment(order)
    state = _state(order, payment)
    data = payment_as_dict(payment) if payment else None
    method_label = str(Method(payment.method).label) if payment else ""
    can_pay = order.is_payable and state in {"choose", "pending", "timeout", "failed"}
    ranking = _ranking(request, order) if can_pay else None
    next_best = None
    if ranking and payment and state in {"failed", "timeout"}:
        next_best = ranking.next_best(after=payment.method)
    attempt = latest_attempt(payment) if payment else None
    selected = payment.method if payment and state == "pending" else None
    if ranking and (selected is None or not ranking.is_usable(selected)):
        selected = (
            next_best.method
            if next_best
            else (ranking.usable[0].method if ranking.usable else None)
        )
    now = timezone.now()
    remaining = max(0, int((order.expires_at - now).total_seconds()))
    return {
        "order": order,
        "brand": order.listing.brand,
        "payment": payment,
        "payment_data": data,
        "state": state,
        "state_key": _key(order, payment),
        "status": _status(order, state, method_label),
        "polling": _polling(order, state),
        "poll_seconds": POLL_SECONDS,
        "method_label": method_label,
        "panel": _action_panel(data.get("action") if data else None, method_label),
        "attempt_open": bool(attempt and attempt.status in ATTEMPT_OPEN),
        "ranking": ranking,
        "selected": selected,
        "next_best": next_best,
        "plans": ordering.instalment_plans(order.amount)
        if ranking and ranking.get(Method.CARD_INSTALMENTS)
        else [],
        "codes": _reveal(request, order) if state == "delivered" and order.codes_revealable else [],
        "remaining": remaining,
        "remaining_text": f"{remaining // 60:02d}:{remaining % 60:02d}",
        "guarantee_hours": order.listing.brand.guarantee_hours,
        "amount_text": ordering.money_text(order.amount, order.currency),
        "unit_price_text": ordering.money_text(order.unit_price, order.currency),
        "show_reasons": request.user.is_staff,
        "notice": notice,
        "fresh": fresh,
        "now": now,
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


@never_cache
@login_required
@require_GET
def order_status(request, number: str):
    """The small status fragment polled every ~2 s; when what the page shows has changed,
    the checkout body rides along out of band (codes appear without a reload)."""
    order = _order_for(request, number)
    payment = _latest_payment(order)
    key = _key(order, payment)
    if request.GET.get("seen") != key:
        return render(request, "marketplace/checkout/poll.html", _page_context(request, order))
    state = _state(order, payment)
    label = str(Method(payment.method).label) if payment else ""
    context = {
        "order": order,
        "state": state,
        "state_key": key,
        "status": _status(order, state, label),
        "polling": _polling(order, state),
        "poll_seconds": POLL_SECONDS,
    }
    return render(request, "marketplace/checkout/status.html", context)


@never_cache
@login_required
@require_POST
@throttles.throttle(throttles.PAY)
def order_pay_view(request, number: str):
    """Start paying with the chosen method; answer its panel (QR, form, widget) in place, or
    send the buyer to the channel when the channel's flow is a redirect."""
    order = _order_for(request, number)
    method = request.POST.get("method", "")
    if not order.is_payable:
        return _done(request, order, notice=_("This order can no longer be paid."))
    ranking = _ranking(request, order)
    if not ranking.is_usable(method):
        return _done(request, order, notice=_("Choose one of the payment methods shown."))
    instalments = None
    if method == Method.CARD_INSTALMENTS:
        months = {plan.months for plan in ordering.instalment_plans(order.amount)}
        try:
            instalments = int(request.POST.get("instalments", ""))
        except ValueError:
            instalments = min(months)
        if instalments not in months:
            return _done(request, order, notice=_("Choose one of the instalment plans shown."))
    try:
        payment = order_pay(
            order=order,
            buyer=request.user,
            method=method,
            client=client_info(request),
            return_url=settings.SITE_URL + _order_url(order),
            instalments=instalments,
        )
    except (MarketplaceError, PaymentError) as exc:
        return _done(request, order, notice=getattr(exc, "message", "") or str(exc))
    ordering.ranking_record(payment=payment, ranking=ranking)
    order.refresh_from_db()
    action = (
        (payment_as_dict(payment).get("action") or {})
        if payment.status == PaymentStatus.PENDING
        else {}
    )
    if action.get("type") == "redirect" and action.get("url"):
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
    payment = _latest_payment(order)
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
    """The "check again" button: ask the channel about the open attempt now, instead of waiting for its
    notification or the background query."""
    order = _order_for(request, number)
    payment = _latest_payment(order)
    attempt = latest_attempt(payment) if payment else None
    if attempt is not None and attempt.status in ATTEMPT_OPEN:
        attempt_query(attempt_id=attempt.pk)
        order.refresh_from_db()
    return _done(request, order)

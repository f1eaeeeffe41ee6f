"""Shop pages: catalogue, listing, my orders, disputes, and the seller's side (/sell/).

Thin: each view validates a form, calls one service or selector, and renders or redirects.
The buyer's order page itself (checkout, status, codes) lives in ``checkout.py``.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import throttles
from marketplace import selectors, services
from marketplace.errors import CodesInvalid, MarketplaceError, OrderNotFound, OutOfStock
from marketplace.forms import (
    BuyForm,
    CatalogueFilterForm,
    CodesAddForm,
    DisputeAnswerForm,
    DisputeForm,
    ListingForm,
    NetPreviewForm,
    PayoutDestinationForm,
    PayoutRequestForm,
    RepriceForm,
)
from marketplace.models import CardCode, Dispute, Listing, Order

CATALOGUE_PAGE_SIZE = 24
MAX_ERRORS_SHOWN = 200


def order_url(number: str) -> str:
    """The buyer's order page (served by the checkout views)."""
    try:
        return reverse("marketplace:order_detail", args=[number])
    except NoReverseMatch:
        return f"/orders/{number}/"


# ---------------------------------------------------------------------------------------------
# Buying


@require_GET
def catalogue(request):
    form = CatalogueFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    listings = selectors.catalogue_listings(
        q=(filters.get("q") or "").strip(),
        category=filters.get("category") or "",
        brand_id=filters["brand"].pk if filters.get("brand") else None,
        face_value_min=filters.get("face_value_min"),
        face_value_max=filters.get("face_value_max"),
        sort=filters.get("sort") or "discount",
    )
    page = Paginator(listings, CATALOGUE_PAGE_SIZE).get_page(request.GET.get("page"))
    for listing in page.object_list:
        listing.seller_rating = selectors.seller_rating(
            sold=listing.seller_sold, bad=listing.seller_bad
        )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "marketplace/catalogue.html",
        {"form": form, "page": page, "listings": page.object_list, "query": query.urlencode()},
    )


@require_http_methods(["GET", "POST"])
@throttles.throttle(throttles.ORDER)
def listing_detail(request, listing_id: int):
    try:
        listing = selectors.listing_for_sale(listing_id=listing_id)
    except Listing.DoesNotExist:
        raise Http404
    if listing.status == Listing.Status.WITHDRAWN:
        raise Http404
    listing.seller_rating = selectors.seller_rating(
        sold=listing.seller_sold, bad=listing.seller_bad
    )
    form = BuyForm(request.POST or None, stock=listing.stock)
    status = 200
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if form.is_valid():
            try:
                order = services.order_create(
                    buyer=request.user, listing=listing, quantity=form.cleaned_data["quantity"]
                )
            except OutOfStock as exc:
                form.add_error("quantity", exc.message)
                status = 409
            except MarketplaceError as exc:
                form.add_error(None, exc.message)
                status = 400
            else:
                return redirect(order_url(order.number))
        else:
            status = 400
    return render(
        request,
        "marketplace/listing_detail.html",
        {
            "listing": listing,
            "form": form,
            "reservation_minutes": settings.ORDER_RESERVATION_MINUTES,
        },
        status=status,
    )


@login_required
@require_GET
def my_orders(request):
    page = Paginator(selectors.buyer_orders(buyer=request.user), 30).get_page(
        request.GET.get("page")
    )
    return render(request, "marketplace/my_orders.html", {"page": page, "orders": page.object_list})


@login_required
@require_POST
def order_cancel(request, number: str):
    try:
        order = selectors.order_for_buyer(buyer=request.user, number=number)
        services.order_cancel(order=order, buyer=request.user)
    except OrderNotFound:
        raise Http404
    except MarketplaceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Order %(number)s was cancelled.") % {"number": number})
    return redirect("marketplace:my_orders")


@login_required
@require_http_methods(["GET", "POST"])
def order_dispute(request, number: str):
    try:
        order = selectors.order_for_buyer(buyer=request.user, number=number)
    except OrderNotFound:
        raise Http404
    disputes = selectors.order_disputes_by_code(order=order)
    codes = list(
        order.codes.filter(status__in=[CardCode.Status.SOLD, CardCode.Status.BAD]).order_by("id")
    )
    choices = [
        (code.pk, _("Code %(n)d (%(masked)s)") % {"n": position, "masked": code.masked})
        for position, code in enumerate(codes, start=1)
        if code.pk not in disputes
    ]
    form = DisputeForm(request.POST or None, request.FILES or None, codes=choices)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.dispute_open(
                    order=order,
                    buyer=request.user,
                    code_id=form.cleaned_data["code"],
                    reason=form.cleaned_data["reason"],
                    note=form.cleaned_data["note"],
                    evidence=form.cleaned_data["evidence"],
                )
            except MarketplaceError as exc:
                form.add_error(None, exc.message)
                status = 400
            else:
                messages.success(
                    request,
                    _("Your dispute was opened. The seller and our support team will look at it."),
                )
                return redirect(order_url(order.number))
        else:
            status = 400
    positions = {code.pk: position for position, code in enumerate(codes, start=1)}
    return render(
        request,
        "marketplace/order_dispute.html",
        {
            "order": order,
            "form": form,
            "disputes": [(positions.get(d.code_id), d) for d in disputes.values()],
            "window_open": bool(choices)
            and order.status in {Order.Status.DELIVERED, Order.Status.DISPUTED}
            and order.guarantee_until is not None
            and order.guarantee_until > timezone.now(),
        },
        status=status,
    )


# ---------------------------------------------------------------------------------------------
# Selling


def _codes_error_lines(errors: dict[int, list[str]], entries) -> list[str]:
    lines = []
    for index, problems in errors.items():
        where = (
            entries[index].line
            if index < len(entries) and entries[index].line is not None
            else index + 1
        )
        lines.append(
            _("Line %(line)d: %(problems)s") % {"line": where, "problems": " ".join(problems)}
        )
    return lines


def _codes_to_list(form, brand) -> tuple[list, list[str]]:
    """The codes to save and the lines skipped (only when the seller asked to list the valid
    lines only); raises :class:`CodesInvalid` when nothing would be left to list."""
    if not form.cleaned_data.get("valid_only"):
        return form.entries, []
    valid, refused = services.codes_split(brand=brand, codes=form.entries)
    if not valid:
        raise CodesInvalid(_("None of the lines can be listed; nothing was saved."), errors=refused)
    return valid, _codes_error_lines(refused, form.entries)


def _skipped_message(request, skipped: list[str]) -> None:
    if not skipped:
        return
    summary = ngettext("%(n)d line was skipped:", "%(n)d lines were skipped:", len(skipped)) % {
        "n": len(skipped)
    }
    shown = " ".join(skipped[:MAX_ERRORS_SHOWN])
    messages.warning(request, f"{summary} {shown}")


@login_required
@require_GET
def seller_dashboard(request):
    dashboard = selectors.seller_dashboard(seller=request.user)
    return render(
        request,
        "marketplace/sell/dashboard.html",
        {
            "dashboard": dashboard,
            "destination_form": PayoutDestinationForm(),
            "payout_form": PayoutRequestForm(
                seller=request.user, available=dashboard.balances.available
            ),
        },
    )


@sensitive_post_parameters("codes")
@login_required
@require_http_methods(["GET", "POST"])
def listing_new(request):
    form = ListingForm(request.POST or None, request.FILES or None)
    code_errors: list[str] = []
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                entries, skipped = _codes_to_list(form, data["brand"])
                listing = services.listing_create(
                    seller=request.user,
                    brand=data["brand"],
                    face_value=data["face_value"],
                    price=data["price"],
                    codes=entries,
                )
            except CodesInvalid as exc:
                form.add_error(None, exc.message)
                code_errors = _codes_error_lines(exc.errors, form.entries)
            except ValidationError as exc:
                form.add_error(None, exc)
            except MarketplaceError as exc:
                form.add_error(None, exc.message)
            else:
                if listing.status == Listing.Status.ACTIVE:
                    messages.success(
                        request,
                        _("Your listing is on sale with %(n)d code(s).") % {"n": len(entries)},
                    )
                else:
                    _screening_message(request, listing)
                _skipped_message(request, skipped)
                return redirect("marketplace:seller_listing", listing_id=listing.pk)
    return render(
        request,
        "marketplace/sell/listing_new.html",
        {
            "form": form,
            "code_errors": code_errors[:MAX_ERRORS_SHOWN],
            "more_errors": max(0, len(code_errors) - MAX_ERRORS_SHOWN),
            **_net_context(request.POST or None),
        },
        status=status,
    )


def _net_context(data) -> dict:
    """What the seller receives per code after the platform's commission (empty if unknown)."""
    form = NetPreviewForm(data)
    if not form.is_valid():
        # A price typed but not understood says so, rather than the preview going blank.
        return {"price_error": form.errors.get("price")} if data and data.get("price") else {}
    brand, price = form.cleaned_data["brand"], form.cleaned_data["price"]
    commission = brand.unit_commission(price)
    return {"price": price, "commission": commission, "net": price - commission, "brand": brand}


@login_required
@require_GET
def net_preview(request):
    """htmx fragment of the net-after-commission line."""
    return render(request, "marketplace/sell/_net.html", _net_context(request.GET))


def _own_listing(request, listing_id: int) -> Listing:
    return get_object_or_404(
        Listing.objects.select_related("brand"), pk=listing_id, seller=request.user
    )


def _screening_message(request, listing: Listing) -> None:
    """Why an upload is not on sale: risk held it for a check, or refused it."""
    if listing.status in {Listing.Status.PAUSED, Listing.Status.UNDER_REVIEW}:
        messages.warning(
            request,
            _(
                "Your codes are saved; the listing goes on sale once our team has checked this "
                "upload."
            ),
        )
    elif listing.status == Listing.Status.WITHDRAWN:
        messages.error(
            request,
            _("This upload did not pass our checks and is not on sale. Please contact support."),
        )


@sensitive_post_parameters("codes")
@login_required
@require_http_methods(["GET", "POST"])
def seller_listing(request, listing_id: int):
    listing = _own_listing(request, listing_id)
    add_form = CodesAddForm(request.POST or None, request.FILES or None)
    code_errors: list[str] = []
    status = 200
    if request.method == "POST":
        status = 400
        if add_form.is_valid():
            try:
                entries, skipped = _codes_to_list(add_form, listing.brand)
                added = services.listing_codes_add(
                    listing=listing, seller=request.user, codes=entries
                )
            except CodesInvalid as exc:
                add_form.add_error(None, exc.message)
                code_errors = _codes_error_lines(exc.errors, add_form.entries)
            except MarketplaceError as exc:
                add_form.add_error(None, exc.message)
            else:
                messages.success(request, _("%(n)d code(s) added.") % {"n": added})
                if listing.status != Listing.Status.ACTIVE:
                    _screening_message(request, listing)
                _skipped_message(request, skipped)
                return redirect("marketplace:seller_listing", listing_id=listing.pk)
    counts = dict(listing.codes.values_list("status").annotate(n=Count("id")))
    codes_page = Paginator(
        listing.codes.only("id", "hint", "status", "created_at", "sold_at", "order_id").order_by(
            "-id"
        ),
        50,
    ).get_page(request.GET.get("page"))
    return render(
        request,
        "marketplace/sell/listing.html",
        {
            "listing": listing,
            "counts": counts,
            "codes_page": codes_page,
            "add_form": add_form,
            "reprice_form": RepriceForm(initial={"price": listing.price}),
            "code_errors": code_errors[:MAX_ERRORS_SHOWN],
            "more_errors": max(0, len(code_errors) - MAX_ERRORS_SHOWN),
        },
        status=status,
    )


@login_required
@require_POST
def seller_listing_update(request, listing_id: int):
    """Reprice, pause, resume or withdraw (one button or field per action)."""
    listing = _own_listing(request, listing_id)
    action = request.POST.get("action", "")
    price: Decimal | None = None
    new_status = {
        "pause": Listing.Status.PAUSED,
        "resume": Listing.Status.ACTIVE,
        "withdraw": Listing.Status.WITHDRAWN,
    }.get(action)
    if action == "reprice":
        form = RepriceForm(request.POST)
        if not form.is_valid():
            messages.error(request, " ".join(form.errors.get("price", [_("Enter a price.")])))
            return redirect("marketplace:seller_listing", listing_id=listing.pk)
        price = form.cleaned_data["price"]
    elif new_status is None:
        messages.error(request, _("Unknown action."))
        return redirect("marketplace:seller_listing", listing_id=listing.pk)
    try:
        services.listing_update(
            listing=listing, seller=request.user, price=price, status=new_status
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except MarketplaceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Listing updated."))
    return redirect("marketplace:seller_listing", listing_id=listing.pk)


@login_required
@require_POST
def seller_code_withdraw(request, listing_id: int, code_id: int):
    listing = _own_listing(request, listing_id)
    code = get_object_or_404(CardCode, pk=code_id, listing=listing)
    try:
        services.card_code_withdraw(code=code, seller=request.user)
    except MarketplaceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Code %(code)s withdrawn.") % {"code": code.masked})
    return redirect("marketplace:seller_listing", listing_id=listing.pk)


@login_required
@require_POST
def seller_dispute_answer(request, dispute_id: int):
    dispute = get_object_or_404(Dispute, pk=dispute_id, order__listing__seller=request.user)
    form = DisputeAnswerForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Write an answer first."))
    else:
        try:
            services.dispute_answer(
                dispute=dispute, seller=request.user, answer=form.cleaned_data["answer"]
            )
        except MarketplaceError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Your answer was sent to our support team."))
    return redirect(reverse("marketplace:seller_dashboard") + "#disputes")


@login_required
@require_POST
def payout_destination_add(request):
    form = PayoutDestinationForm(request.POST)
    if form.is_valid():
        try:
            services.payout_destination_create(seller=request.user, **form.cleaned_data)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Payout account added."))
    else:
        messages.error(request, " ".join(m for errors in form.errors.values() for m in errors))
    return redirect(reverse("marketplace:seller_dashboard") + "#payouts")


@login_required
@require_POST
def payout_request(request):
    form = PayoutRequestForm(request.POST, seller=request.user)
    if form.is_valid():
        try:
            payout = services.payout_request(
                seller=request.user,
                destination=form.cleaned_data["destination"],
                amount=form.cleaned_data["amount"],
            )
        except MarketplaceError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request,
                _("Payout of %(amount)s requested; Finance will review it.")
                % {"amount": payout.amount},
            )
    else:
        messages.error(request, " ".join(m for errors in form.errors.values() for m in errors))
    return redirect(reverse("marketplace:seller_dashboard") + "#payouts")


@login_required
@require_GET
def dispute_evidence(request, dispute_id: int, evidence_id: int):
    """A dispute screenshot, for the order's buyer and seller and for staff who handle
    disputes; anyone else gets a 404, as if it did not exist."""
    item = selectors.dispute_evidence_for(
        user=request.user, dispute_id=dispute_id, evidence_id=evidence_id
    )
    if item is None:
        raise Http404
    response = FileResponse(item.file.open("rb"), content_type=item.content_type)
    response["Content-Disposition"] = "inline"
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response

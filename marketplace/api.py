"""REST API v1 of the shop (CONTRACT.md): thin views over selectors and services.

Status codes: 201 created; 400 invalid input (nothing saved; codes' errors keyed by index);
404 for an order that is not the caller's; 409 when the stock or the order's state says no.
POSTs honour ``Idempotency-Key``.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import generics, permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import throttles
from accounts.throttles import ActionThrottleMixin
from marketplace import selectors, services
from marketplace.checkout_state import order_payment_waiting
from marketplace.errors import (
    CodesInvalid,
    ListingUnavailable,
    MarketplaceError,
    OrderNotFound,
    OrderNotPayable,
    OutOfStock,
)
from marketplace.idempotency import IdempotentPostMixin
from marketplace.models import Brand, Listing, Order, RevealAudit
from marketplace.serializers import (
    BrandSerializer,
    ListingCreatedSerializer,
    ListingCreateSerializer,
    ListingSerializer,
    OrderCreateSerializer,
    OrderDetailSerializer,
    OrderPaySerializer,
    OrderSerializer,
    PaymentAnswerSerializer,
)
from payments.client import client_from_request, request_ip
from payments.ordering import ChoiceRefused
from payments.presenters import payment_as_dict
from payments.services import PaymentError

ErrorSerializer = inline_serializer("Error", {"detail": serializers.CharField()})
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "Repeat a POST with the same key to get the first answer back instead of acting twice."
    ),
)


def _error(message: str, code: int, **extra) -> Response:
    return Response({"detail": message, **extra}, status=code)


MAX_FILTER_AMOUNT = Decimal("10000000000")  # the money columns hold 10 digits before the point


def _decimal_param(request, name: str) -> Decimal | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise serializers.ValidationError({name: [_("Not a number.")]})
    # NaN, Infinity and 1e999999 parse as decimals but are no amount: the database
    # comparison would fail (a 500) or match nothing.
    if not value.is_finite() or not (0 <= value < MAX_FILTER_AMOUNT):
        raise serializers.ValidationError(
            {name: [_("Give an amount between 0 and %(max)s.") % {"max": MAX_FILTER_AMOUNT}]}
        )
    return value


class BrandList(generics.ListAPIView):
    """Brands with the code format their cards follow."""

    permission_classes = [permissions.AllowAny]
    serializer_class = BrandSerializer
    queryset = Brand.objects.filter(active=True).order_by("name")


LISTING_FILTERS = [
    OpenApiParameter("brand", OpenApiTypes.INT, description="Brand id"),
    OpenApiParameter("category", OpenApiTypes.STR, description="Brand category, e.g. shopping"),
    OpenApiParameter("face_value", OpenApiTypes.DECIMAL, description="Exact face value"),
    OpenApiParameter("face_value_min", OpenApiTypes.DECIMAL),
    OpenApiParameter("face_value_max", OpenApiTypes.DECIMAL),
    OpenApiParameter("q", OpenApiTypes.STR, description="Search brand names"),
    OpenApiParameter(
        "ordering", OpenApiTypes.STR, enum=list(selectors.SORTS), description="Default: discount"
    ),
]


class ListingListCreate(IdempotentPostMixin, generics.ListCreateAPIView):
    """Listings on sale with their stock (never a secret); sellers create listings with codes."""

    permission_classes = [permissions.IsAuthenticatedOrReadOnly]
    serializer_class = ListingSerializer

    def get_queryset(self):
        params = self.request.query_params
        brand = params.get("brand")
        if brand and not brand.isdigit():
            raise serializers.ValidationError({"brand": ["Give a brand id."]})
        return selectors.catalogue_listings(
            q=params.get("q", "").strip(),
            category=params.get("category", ""),
            brand_id=int(brand) if brand else None,
            face_value=_decimal_param(self.request, "face_value"),
            face_value_min=_decimal_param(self.request, "face_value_min"),
            face_value_max=_decimal_param(self.request, "face_value_max"),
            sort=params.get("ordering", "discount"),
        )

    @extend_schema(parameters=LISTING_FILTERS)
    def get(self, request, *args, **kwargs):
        """The catalogue is read far more often than it changes: one page per query, language
        and host is kept for ``CATALOGUE_CACHE_SECONDS`` in the shared cache (the stock it
        shows may lag that long; ordering checks the real stock)."""
        seconds = settings.CATALOGUE_CACHE_SECONDS
        if not seconds:
            return super().get(request, *args, **kwargs)
        query = sorted(request.query_params.lists())
        digest = hashlib.sha256(repr((request.get_host(), query)).encode()).hexdigest()[:32]
        key = f"catalogue:api:{get_language()}:{digest}"
        data = cache.get(key)
        if data is not None:
            return Response(data)
        response = super().get(request, *args, **kwargs)
        if response.status_code == 200:
            cache.set(key, response.data, seconds)
        return response

    @extend_schema(
        parameters=[IDEMPOTENCY_KEY],
        request=ListingCreateSerializer,
        responses={
            201: ListingCreatedSerializer,
            400: OpenApiResponse(description='e.g. {"codes": {"3": ["…"]}}'),
        },
    )
    def post(self, request, *args, **kwargs):
        serializer = ListingCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            listing = services.listing_create(
                seller=request.user,
                brand=data["brand"],
                face_value=data["face_value"],
                price=data["price"],
                codes=data["codes"],
            )
        except CodesInvalid as exc:
            body = (
                {"codes": {str(index): messages for index, messages in exc.errors.items()}}
                if exc.errors
                else {"codes": [exc.message]}
            )
            return Response({**body, "detail": exc.message}, status=status.HTTP_400_BAD_REQUEST)
        except ValidationError as exc:
            return Response(exc.message_dict, status=status.HTTP_400_BAD_REQUEST)
        except ListingUnavailable as exc:
            return _error(exc.message, status.HTTP_400_BAD_REQUEST)
        # Risk may hold the upload (status paused) or refuse it (withdrawn: nothing for sale).
        listing.stock = 0 if listing.status == Listing.Status.WITHDRAWN else len(data["codes"])
        return Response(ListingCreatedSerializer(listing).data, status=status.HTTP_201_CREATED)


class OrderListCreate(ActionThrottleMixin, IdempotentPostMixin, generics.ListAPIView):
    """The caller's orders; POST reserves codes of a listing (409 when there are not enough)."""

    action_throttles = throttles.ORDER
    permission_classes = [permissions.IsAuthenticated]
    serializer_class = OrderSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Order.objects.none()
        return selectors.buyer_orders(buyer=self.request.user)

    @extend_schema(
        parameters=[IDEMPOTENCY_KEY],
        request=OrderCreateSerializer,
        responses={
            201: OrderSerializer,
            400: ErrorSerializer,
            409: inline_serializer(
                "OutOfStock",
                {"detail": serializers.CharField(), "available": serializers.IntegerField()},
            ),
        },
    )
    def post(self, request, *args, **kwargs):
        serializer = OrderCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            order = services.order_create(
                buyer=request.user,
                listing=serializer.validated_data["listing"],
                quantity=serializer.validated_data["quantity"],
            )
        except OutOfStock as exc:
            return _error(exc.message, status.HTTP_409_CONFLICT, available=exc.available)
        except MarketplaceError as exc:
            return _error(exc.message, status.HTTP_400_BAD_REQUEST)
        return Response(OrderSerializer(order).data, status=status.HTTP_201_CREATED)


def _buyer_order(request, number: str):
    try:
        return selectors.order_for_buyer(buyer=request.user, number=number)
    except OrderNotFound:
        raise Http404


class OrderDetail(APIView):
    """One of the caller's orders; ``codes`` appear once it is delivered (each read audited)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: OrderDetailSerializer, 404: ErrorSerializer})
    def get(self, request, number: str):
        order = _buyer_order(request, number)
        data = OrderSerializer(order).data
        if order.codes_revealable:
            revealed = services.order_codes_reveal(
                order=order,
                user=request.user,
                channel=RevealAudit.Channel.API,
                ip=request_ip(request) or None,
                user_agent=request.META.get("HTTP_USER_AGENT", ""),
            )
            data["codes"] = [{"code": item.code, "pin": item.pin} for item in revealed]
        if (
            order.status == Order.Status.AWAITING_PAYMENT
            and order.is_payable
            and not order_payment_waiting(order=order)
        ):
            # What paying in another currency would cost, before the buyer pays (the same
            # offer the order page shows); not while a payment waits for the buyer at its
            # channel, when a client only polls for the outcome.
            offer = services.order_checkout_offer(order=order, client=client_from_request(request))
            data["currencies"] = offer.as_dict()
        response = Response(data)
        response["Cache-Control"] = "no-store"
        return response


class OrderCancel(IdempotentPostMixin, APIView):
    """Give up an unpaid order; its codes go back on sale."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        parameters=[IDEMPOTENCY_KEY],
        request=None,
        responses={200: OrderSerializer, 404: ErrorSerializer, 409: ErrorSerializer},
    )
    def post(self, request, number: str):
        order = _buyer_order(request, number)
        try:
            order = services.order_cancel(order=order, buyer=request.user)
        except OrderNotPayable as exc:
            return _error(exc.message, status.HTTP_409_CONFLICT)
        return Response(OrderSerializer(order).data)


def _seen_rate(data) -> dict[str, str] | None:
    """The rate the client showed for the currency it pays in, when it sent one."""
    if not data.get("rate") or not data.get("currency"):
        return None
    return {data["currency"].upper(): data["rate"]}


class OrderPay(ActionThrottleMixin, IdempotentPostMixin, APIView):
    """Start paying the order with a method; the answer says what the buyer must do next.

    The same check as the order page: a method this buyer is not offered for this order, or
    an instalment plan the page would not offer, is a 400 naming what is allowed."""

    action_throttles = throttles.PAY
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        parameters=[IDEMPOTENCY_KEY],
        request=OrderPaySerializer,
        responses={
            200: PaymentAnswerSerializer,
            400: OpenApiResponse(
                description='e.g. {"detail": "…", "instalments": ["…"], "allowed": [3, 6, 12]}'
            ),
            404: ErrorSerializer,
            409: ErrorSerializer,
        },
    )
    def post(self, request, number: str):
        order = _buyer_order(request, number)
        serializer = OrderPaySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            payment = services.order_checkout_pay(
                order=order,
                buyer=request.user,
                method=serializer.validated_data["method"],
                client=client_from_request(request),
                return_url=f"{settings.SITE_URL}/orders/{order.number}/",
                instalments=serializer.validated_data.get("instalments"),
                currency=serializer.validated_data.get("currency", ""),
                seen_rates=_seen_rate(serializer.validated_data),
            )
        except ChoiceRefused as exc:
            body = {"detail": exc.message, exc.field: [exc.message], "allowed": exc.allowed}
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        except OrderNotPayable as exc:
            return _error(exc.message, status.HTTP_409_CONFLICT)
        except MarketplaceError as exc:
            return _error(exc.message, status.HTTP_400_BAD_REQUEST)
        except PaymentError as exc:
            return _error(str(exc), status.HTTP_400_BAD_REQUEST)
        return Response({"payment": payment_as_dict(payment)})

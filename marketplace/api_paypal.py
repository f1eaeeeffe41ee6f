"""REST API v1 for PayPal's JS SDK buttons on the order page: createOrder, onApprove and
onCancel / onError call these (docs/checkout.md, docs/channels/paypal.md).

Like every order call: the caller's own order only (anyone else gets a 404), CSRF-checked for
browser sessions (DRF's SessionAuthentication), thin views over the platform's services. The
payment is the order's latest; the PayPal order id the SDK names must be that payment's.
"""

from __future__ import annotations

from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import throttles
from accounts.throttles import ActionThrottleMixin
from marketplace import selectors
from marketplace.checkout_state import order_latest_payment
from marketplace.errors import OrderNotFound
from marketplace.serializers import OrderSerializer
from payments.presenters import payment_as_dict
from payments.services import (
    ButtonsRefused,
    PaymentError,
    paypal_buttons_abandon,
    paypal_buttons_capture,
    paypal_buttons_order,
)

ORDER_ID = serializers.RegexField(
    r"^[A-Za-z0-9-]{1,64}$", help_text="The PayPal order id the SDK holds (data.orderID)."
)


class CaptureIn(serializers.Serializer):
    order_id = ORDER_ID


class AbandonIn(serializers.Serializer):
    order_id = ORDER_ID
    reason = serializers.ChoiceField(choices=["cancel", "error"])
    detail = serializers.CharField(required=False, allow_blank=True, max_length=255)


Refusal = inline_serializer(
    "PayPalButtonsRefusal",
    {
        "detail": serializers.CharField(),
        "guidance": serializers.CharField(),
        "code": serializers.CharField(),
    },
)


def _order_and_payment(request, number: str):
    try:
        order = selectors.order_for_buyer(buyer=request.user, number=number)
    except OrderNotFound:
        raise Http404 from None
    return order, order_latest_payment(order=order)


def _conflict(message: str) -> Response:
    return Response({"detail": message}, status=status.HTTP_409_CONFLICT)


def _refusal(exc: ButtonsRefused) -> Response:
    return Response(
        {"detail": exc.reason, "guidance": exc.guidance, "code": exc.code},
        status=status.HTTP_409_CONFLICT,
    )


class OrderPayPalOrder(APIView):
    """createOrder: the id of the PayPal order opened for this order's payment."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=None,
        responses={200: inline_serializer("PayPalOrderId", {"id": serializers.CharField()})},
    )
    def post(self, request, number: str):
        _order, payment = _order_and_payment(request, number)
        if payment is None:
            return _conflict(
                _("This order has no payment waiting for PayPal; nothing was charged.")
            )
        try:
            return Response({"id": paypal_buttons_order(payment=payment)})
        except PaymentError as exc:
            return _conflict(str(exc))


class OrderPayPalCapture(ActionThrottleMixin, APIView):
    """onApprove: capture the approved PayPal order; answers the order and payment state."""

    action_throttles = throttles.PAY
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=CaptureIn,
        responses={
            200: inline_serializer(
                "PayPalCaptured",
                {"order": OrderSerializer(), "payment": serializers.DictField()},
            ),
            409: Refusal,
        },
    )
    def post(self, request, number: str):
        order, payment = _order_and_payment(request, number)
        data = CaptureIn(data=request.data)
        data.is_valid(raise_exception=True)
        if payment is None:
            return _conflict(
                _("This order has no payment waiting for PayPal; nothing was charged.")
            )
        try:
            payment = paypal_buttons_capture(
                payment=payment, order_id=data.validated_data["order_id"]
            )
        except ButtonsRefused as exc:
            return _refusal(exc)
        except PaymentError as exc:
            return _conflict(str(exc))
        order.refresh_from_db()
        return Response({"order": OrderSerializer(order).data, "payment": payment_as_dict(payment)})


class OrderPayPalCancel(APIView):
    """onCancel / onError: nothing is charged and the order stays payable; the answer is
    the reason for the buyer, in their language."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=AbandonIn, responses={200: Refusal, 409: Refusal})
    def post(self, request, number: str):
        order, payment = _order_and_payment(request, number)
        data = AbandonIn(data=request.data)
        data.is_valid(raise_exception=True)
        if payment is None:
            return _conflict(
                _("This order has no payment waiting for PayPal; nothing was charged.")
            )
        try:
            message = paypal_buttons_abandon(
                payment=payment,
                order_id=data.validated_data["order_id"],
                why=data.validated_data["reason"],
                detail=data.validated_data.get("detail", ""),
            )
        except ButtonsRefused as exc:
            return _refusal(exc)
        return Response(
            {"detail": message.reason, "guidance": message.guidance, "code": message.code}
        )

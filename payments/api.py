"""Payment-level API: a buyer reads a payment's status and answers a risk challenge."""

from django.http import Http404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import throttles
from accounts.throttles import ActionThrottleMixin
from payments import services
from payments.models import Payment
from payments.presenters import payment_as_dict

PaymentOut = inline_serializer(
    "Payment",
    fields={
        "id": serializers.UUIDField(),
        "status": serializers.CharField(),
        "method": serializers.CharField(),
        "channel": serializers.CharField(allow_null=True),
        "action": serializers.DictField(allow_null=True),
        "reason": serializers.CharField(required=False),
        "guidance": serializers.CharField(required=False),
        "challenge": serializers.DictField(required=False),
    },
)


def _own_payment(request, public_id) -> Payment:
    payment = (
        Payment.objects.filter(public_id=public_id, buyer=request.user)
        .prefetch_related("attempts__account")
        .first()
    )
    if payment is None:
        raise Http404
    return payment


class PaymentDetail(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        responses={200: inline_serializer("PaymentEnvelope", fields={"payment": PaymentOut})}
    )
    def get(self, request, public_id):
        return Response({"payment": payment_as_dict(_own_payment(request, public_id))})


class ChallengeIn(serializers.Serializer):
    code = serializers.RegexField(
        r"^\d{6}$", help_text="The six-digit one-time code the buyer received."
    )


class PaymentChallenge(ActionThrottleMixin, APIView):
    permission_classes = [permissions.IsAuthenticated]
    action_throttles = throttles.CHALLENGE

    @extend_schema(
        request=ChallengeIn,
        responses={200: inline_serializer("ChallengeAnswer", fields={"payment": PaymentOut})},
    )
    def post(self, request, public_id):
        payment = _own_payment(request, public_id)
        data = ChallengeIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            payment = services.payment_challenge_answer(
                payment=payment, code=data.validated_data["code"]
            )
        except services.PaymentError as exc:
            return Response(
                {
                    "detail": str(exc),
                    "payment": payment_as_dict(Payment.objects.get(pk=payment.pk)),
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        return Response({"payment": payment_as_dict(payment)})

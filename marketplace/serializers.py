"""API shapes of the shop (CONTRACT.md "REST API, version 1"). Listing shapes never carry a
secret; an order's codes appear only once delivered, through the audited reveal."""

from __future__ import annotations

import copy
from decimal import Decimal

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from marketplace.code_formats import MAX_CODES_PER_UPLOAD, CodeInput
from marketplace.models import Brand, Category, Listing, Order
from marketplace.selectors import listing_with_brand, seller_rating
from marketplace.services import MAX_QUANTITY
from payments.models import Method

MONEY = {"max_digits": 12, "decimal_places": 2}


class FieldsBuiltOnce:
    """A ModelSerializer builds its fields from the model's at every instantiation (about
    half a millisecond for an order); they depend on the class alone, so build them once per
    class and hand each instance its own copy, as a plain Serializer does with its fields."""

    def get_fields(self):
        built = type(self).__dict__.get("_fields_built")
        if built is None:
            built = super().get_fields()
            type(self)._fields_built = built
        return copy.deepcopy(built)


class BrandSerializer(serializers.ModelSerializer):
    class Meta:
        model = Brand
        fields = [
            "id",
            "name",
            "slug",
            "category",
            "description",
            "code_min_length",
            "code_max_length",
            "code_charset",
            "code_checksum",
            "pin_required",
            "pin_min_length",
            "pin_max_length",
            "guarantee_hours",
            "commission_percent",
        ]


class SellerSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="seller.pk")
    name = serializers.CharField(source="seller.public_name")
    sold = serializers.IntegerField(source="seller_sold")
    rating = serializers.SerializerMethodField(
        help_text=_(
            "Percentage of delivered codes not refunded after a dispute; null for new sellers."
        )
    )

    def get_rating(self, listing) -> str | None:
        rating = seller_rating(sold=listing.seller_sold, bad=listing.seller_bad)
        return None if rating is None else str(rating)


class ListingSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    brand = serializers.PrimaryKeyRelatedField(read_only=True)
    brand_name = serializers.CharField(source="brand.name", read_only=True)
    brand_slug = serializers.CharField(source="brand.slug", read_only=True)
    category = serializers.ChoiceField(
        source="brand.category", choices=Category.choices, read_only=True
    )
    stock = serializers.IntegerField(read_only=True, help_text=_("Codes available right now."))
    discount_percent = serializers.DecimalField(max_digits=5, decimal_places=1, read_only=True)
    seller = serializers.SerializerMethodField()
    status = serializers.CharField(read_only=True, help_text=_("active, paused or withdrawn"))

    class Meta:
        model = Listing
        fields = [
            "id",
            "brand",
            "brand_name",
            "brand_slug",
            "category",
            "face_value",
            "price",
            "currency",
            "discount_percent",
            "stock",
            "status",
            "seller",
            "created_at",
        ]

    def get_seller(self, listing) -> dict:
        return SellerSerializer(listing).data


class ListingCreateSerializer(serializers.Serializer):
    brand = serializers.PrimaryKeyRelatedField(queryset=Brand.objects.filter(active=True))
    face_value = serializers.DecimalField(**MONEY, min_value=Decimal("0.01"))
    price = serializers.DecimalField(**MONEY, min_value=Decimal("0.01"))
    codes = serializers.JSONField(
        help_text=_('[{"code": "…", "pin": "…"}, …]; errors come back keyed by index.')
    )

    def validate(self, attrs):
        if attrs["price"] > attrs["face_value"]:
            raise serializers.ValidationError(
                {"price": [_("The price cannot be above the face value.")]}
            )
        return attrs

    def validate_codes(self, value) -> list[CodeInput]:
        if not isinstance(value, list) or not value:
            raise serializers.ValidationError(_("Send a non-empty list of codes."))
        if len(value) > MAX_CODES_PER_UPLOAD:
            raise serializers.ValidationError(
                _("At most %(max)d codes per request.") % {"max": MAX_CODES_PER_UPLOAD}
            )
        entries, errors = [], {}
        for index, item in enumerate(value):
            if isinstance(item, str):
                item = {"code": item}
            if not isinstance(item, dict) or not isinstance(item.get("code"), str):
                errors[str(index)] = [
                    str(_('Each code must be an object like {"code": "…", "pin": "…"}.'))
                ]
                continue
            pin = item.get("pin") or ""
            if not isinstance(pin, str):
                errors[str(index)] = [str(_("The PIN must be a string."))]
                continue
            entries.append(CodeInput(code=item["code"], pin=pin))
        if errors:
            raise serializers.ValidationError(errors)
        return entries


class ListingCreatedSerializer(serializers.ModelSerializer):
    stock = serializers.IntegerField()
    status = serializers.CharField(read_only=True)

    class Meta:
        model = Listing
        fields = ["id", "brand", "face_value", "price", "currency", "status", "stock"]


class _ListingField(serializers.PrimaryKeyRelatedField):
    """The listing by id with its brand, which ordering needs: one compiled read."""

    def to_internal_value(self, data):
        try:
            if isinstance(data, bool):
                raise TypeError
            return listing_with_brand(pk=data)
        except Listing.DoesNotExist:
            self.fail("does_not_exist", pk_value=data)
        except (TypeError, ValueError):
            self.fail("incorrect_type", data_type=type(data).__name__)


class OrderCreateSerializer(serializers.Serializer):
    listing = _ListingField(queryset=Listing.objects.all())
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY, default=1)


class RevealedCodeSerializer(serializers.Serializer):
    code = serializers.CharField()
    pin = serializers.CharField(allow_blank=True)


class OrderSerializer(FieldsBuiltOnce, serializers.ModelSerializer):
    listing = serializers.PrimaryKeyRelatedField(read_only=True)
    brand = serializers.CharField(source="listing.brand.name", read_only=True)
    face_value = serializers.DecimalField(source="listing.face_value", **MONEY, read_only=True)

    class Meta:
        model = Order
        fields = [
            "number",
            "status",
            "amount",
            "currency",
            "quantity",
            "unit_price",
            "listing",
            "brand",
            "face_value",
            "expires_at",
            "created_at",
            "paid_at",
            "delivered_at",
            "guarantee_until",
        ]


class OrderDetailSerializer(OrderSerializer):
    codes = RevealedCodeSerializer(
        many=True, required=False, help_text=_("Only once delivered; every read is audited.")
    )
    currencies = serializers.DictField(
        required=False,
        help_text=_(
            "While payable: the foreign currencies the price can be paid in, each with its "
            "amount, rate, the rate's time and the methods that charge it."
        ),
    )

    class Meta(OrderSerializer.Meta):
        fields = [*OrderSerializer.Meta.fields, "codes", "currencies"]


class OrderPaySerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=Method.choices)
    instalments = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text=_("Months, with card_instalments only: one of the plans the order page offers."),
    )
    currency = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=3,
        help_text=_(
            "ISO code to be charged in (e.g. USD) when the method can charge it; the CNY price "
            "is converted at the current rate. Blank or CNY: the CNY price."
        ),
    )
    rate = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=32,
        help_text=_(
            "The rate the client showed for that currency (from the order's currencies); "
            "refused with the new price when the rate has changed since."
        ),
    )


class PaymentAnswerSerializer(serializers.Serializer):
    payment = serializers.DictField(
        help_text=_("id, status, method, channel, action, reason, guidance, challenge")
    )

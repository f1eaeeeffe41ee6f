"""Web forms of the shop. They check the shape of input; the rules live in services."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from marketplace.code_formats import (
    MAX_UPLOAD_BYTES,
    CodeInput,
    UploadUnreadable,
    parse_csv,
    parse_paste,
)
from marketplace.models import Brand, Category, Dispute, PayoutDestination
from marketplace.services import MAX_QUANTITY
from marketplace.templatetags.shop import yuan

MONEY = {"max_digits": 12, "decimal_places": 2, "min_value": Decimal("0.01")}


class CatalogueFilterForm(forms.Form):
    SORT_CHOICES = [
        ("discount", _("Biggest discount")),
        ("price", _("Lowest price")),
        ("-price", _("Highest price")),
        ("face_value", _("Face value")),
        ("newest", _("Newest")),
    ]

    q = forms.CharField(label=_("Search"), required=False, max_length=80)
    category = forms.ChoiceField(
        label=_("Category"), required=False, choices=[("", _("All categories")), *Category.choices]
    )
    brand = forms.ModelChoiceField(
        label=_("Brand"),
        required=False,
        queryset=Brand.objects.filter(active=True),
        empty_label=_("All brands"),
    )
    face_value_min = forms.DecimalField(label=_("Face value from"), required=False, **MONEY)
    face_value_max = forms.DecimalField(label=_("Face value up to"), required=False, **MONEY)
    sort = forms.ChoiceField(label=_("Sort by"), required=False, choices=SORT_CHOICES)


class BuyForm(forms.Form):
    quantity = forms.IntegerField(
        label=_("Quantity"), min_value=1, max_value=MAX_QUANTITY, initial=1
    )

    def __init__(self, *args, stock: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["quantity"].widget.attrs.update(
            {"max": max(1, min(stock, MAX_QUANTITY)), "inputmode": "numeric"}
        )


class CodesUploadMixin(forms.Form):
    """Codes pasted one per line ("CODE" or "CODE,PIN") and/or a CSV file; ``entries`` holds
    what was read, each with its line number for error messages."""

    codes = forms.CharField(
        label=_("Codes"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "autocomplete": "off", "spellcheck": "false"}),
        help_text=_("One code per line; put the PIN after a comma: CODE,PIN. Up to 10,000 lines."),
    )
    codes_file = forms.FileField(
        label=_("…or a CSV file"),
        required=False,
        help_text=_("First column: code; second column: PIN (optional). UTF-8 or GB18030."),
    )
    valid_only = forms.BooleanField(
        label=_("List the valid lines only"),
        required=False,
        help_text=_(
            "Lines that are refused are skipped and listed, so you can fix them later. "
            "Unticked: one bad line and nothing is saved."
        ),
    )

    def clean(self):
        cleaned = super().clean()
        entries: list[CodeInput] = []
        self.source = "paste"
        try:
            upload = cleaned.get("codes_file")
            if upload:
                self.source = "file"
                if upload.size > MAX_UPLOAD_BYTES:  # refuse before reading it into memory
                    raise UploadUnreadable(_("The file is larger than 2 MB."))
                entries = parse_csv(upload.read())
            elif cleaned.get("codes"):
                entries = parse_paste(cleaned["codes"])
        except UploadUnreadable as exc:
            raise forms.ValidationError(str(exc))
        if not entries:
            raise forms.ValidationError(_("Paste at least one code or choose a CSV file."))
        self.entries = entries
        return cleaned


class ListingForm(CodesUploadMixin):
    brand = forms.ModelChoiceField(label=_("Brand"), queryset=Brand.objects.filter(active=True))
    face_value = forms.DecimalField(label=_("Face value"), **MONEY)
    price = forms.DecimalField(
        label=_("Your price"), **MONEY, help_text=_("At most the face value.")
    )

    field_order = ["brand", "face_value", "price", "codes", "codes_file", "valid_only"]

    def clean(self):
        face_value, price = self.cleaned_data.get("face_value"), self.cleaned_data.get("price")
        if face_value is not None and price is not None and price > face_value:
            self.add_error("price", _("The price cannot be above the face value."))
        return super().clean()


class CodesAddForm(CodesUploadMixin):
    pass


class RepriceForm(forms.Form):
    price = forms.DecimalField(label=_("New price"), **MONEY)


class NetPreviewForm(forms.Form):
    brand = forms.ModelChoiceField(queryset=Brand.objects.filter(active=True))
    price = forms.DecimalField(**MONEY)


class MultipleImageInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleImageField(forms.FileField):
    """Several files under one name; each is checked by the service (marketplace.evidence)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault(
            "widget", MultipleImageInput(attrs={"accept": "image/png,image/jpeg,image/webp"})
        )
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        if isinstance(data, (list, tuple)):
            return [super(MultipleImageField, self).clean(item, initial) for item in data if item]
        return [super().clean(data, initial)] if data else []


class DisputeForm(forms.Form):
    code = forms.TypedChoiceField(label=_("Which code"), coerce=int)
    reason = forms.ChoiceField(label=_("What is wrong"), choices=Dispute.Reason.choices)
    note = forms.CharField(
        label=_("Tell us more"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("What happened when you used the card (e.g. the balance the issuer showed)."),
    )
    evidence = MultipleImageField(
        label=_("Screenshots (optional)"),
        required=False,
        help_text=_(
            "Up to 3 PNG, JPEG or WebP images of 5 MB each, e.g. the merchant's error. "
            "Only the seller and our staff see them."
        ),
    )

    def __init__(self, *args, codes: list[tuple[int, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["code"].choices = codes


class DisputeAnswerForm(forms.Form):
    answer = forms.CharField(
        label=_("Your answer"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 6, "class": "wide"}),
    )


class PayoutDestinationForm(forms.ModelForm):
    class Meta:
        model = PayoutDestination
        fields = ["kind", "holder_name", "account", "bank_name"]


class PayoutRequestForm(forms.Form):
    destination = forms.ModelChoiceField(
        label=_("Pay to"), queryset=PayoutDestination.objects.none()
    )
    amount = forms.DecimalField(label=_("Amount"), **MONEY)

    def __init__(self, *args, seller, available: Decimal | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        destinations = PayoutDestination.objects.filter(seller=seller).order_by("-id")
        self.fields["destination"].queryset = destinations
        self.fields["destination"].empty_label = None
        newest = destinations.first()
        if newest is not None:
            self.fields["destination"].initial = newest.pk  # the account added last
        if available is not None and available > 0:
            self.fields["amount"].initial = available
            self.fields["amount"].widget.attrs["max"] = str(available)
            self.fields["amount"].help_text = _("Up to %(amount)s available.") % {
                "amount": yuan(available)
            }

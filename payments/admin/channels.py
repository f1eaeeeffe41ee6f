"""Channel accounts (secrets write-only), their health and breakers, error codes and the
notifications they send."""

import json

from django import forms
from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from payments.admin.common import ReadOnlyMixin, money_column
from payments.channels.registry import backend_class, backend_codes
from payments.models import (
    BreakerEvent,
    ChannelAccount,
    ChannelHealth,
    ErrorCode,
    Method,
    Notification,
    NotificationRefusal,
)


class ChannelAccountForm(forms.ModelForm):
    backend = forms.ChoiceField(choices=[])
    methods = forms.MultipleChoiceField(choices=Method.choices, widget=forms.CheckboxSelectMultiple)
    currencies = forms.CharField(
        label=_("Currencies it can charge"),
        required=False,
        help_text=_(
            "ISO codes separated by commas, e.g. CNY, USD, EUR. Empty: its own currency only. "
            "CNY-only channels (Alipay, WeChat Pay, UnionPay, e-CNY) refuse others."
        ),
    )
    new_credentials = forms.CharField(
        label=_("Replace credentials (JSON)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_(
            "Write-only: stored encrypted, never shown back. Leave empty to keep the current ones."
        ),
    )

    class Meta:
        model = ChannelAccount
        fields = (
            "code",
            "name",
            "backend",
            "methods",
            "enabled",
            "weight",
            "currency",
            "currencies",
            "fee_percent",
            "fee_fixed",
            "min_amount",
            "max_amount",
            "daily_cap",
            "settlement_days",
            "merchant_id",
            "app_id",
            "base_url",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["backend"].choices = [(c, c) for c in backend_codes()]
        self.__init_currencies()

    def __init_currencies(self):
        if self.instance and self.instance.pk:
            self.initial["currencies"] = ", ".join(self.instance.currencies or [])

    def clean_currencies(self):
        """``cny, usd`` → ``["CNY", "USD"]``; the model checks what the channel can charge."""
        raw = self.cleaned_data.get("currencies") or ""
        if isinstance(raw, list):
            return raw
        codes = [part.strip().upper() for part in raw.replace(";", ",").split(",")]
        return list(dict.fromkeys(code for code in codes if code))

    def clean_new_credentials(self):
        raw = self.cleaned_data["new_credentials"].strip()
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(_("Not valid JSON: %(error)s") % {"error": exc}) from exc
        if not isinstance(value, dict):
            raise forms.ValidationError(_("Credentials must be a JSON object."))
        return value

    def clean(self):
        """A method the backend cannot serve would fail at checkout: QQ Wallet, for one, only
        an epay aggregator account can take."""
        data = super().clean()
        backend, methods = data.get("backend"), data.get("methods") or []
        if backend:
            served = set(backend_class(backend).methods)
            unsupported = [m for m in methods if m not in served]
            if unsupported:
                self.add_error(
                    "methods",
                    _("Backend %(backend)s cannot serve: %(methods)s")
                    % {
                        "backend": backend,
                        "methods": ", ".join(unsupported),
                    },
                )
        return data

    def save(self, commit=True):
        account = super().save(commit=False)
        if self.cleaned_data.get("new_credentials") is not None:
            account.credentials = self.cleaned_data["new_credentials"]
        if commit:
            account.save()
        return account


@admin.register(ChannelAccount)
class ChannelAccountAdmin(admin.ModelAdmin):
    form = ChannelAccountForm
    list_display = (
        "code",
        "name",
        "backend",
        "method_names",
        "enabled",
        "fee_percent",
        money_column("fee_fixed", _("fixed fee")),
        "settlement_days",
        "breaker",
        "success_rate",
    )
    list_filter = ("backend", "enabled")
    readonly_fields = ("credential_keys", "notify_url_display")
    fieldsets = (
        (None, {"fields": ("code", "name", "backend", "methods", "enabled", "weight")}),
        (
            _("Money"),
            {
                "fields": (
                    "currency",
                    "currencies",
                    "fee_percent",
                    "fee_fixed",
                    "min_amount",
                    "max_amount",
                    "daily_cap",
                    "settlement_days",
                )
            },
        ),
        (
            _("Provider"),
            {
                "fields": (
                    "merchant_id",
                    "app_id",
                    "base_url",
                    "notify_url_display",
                    "credential_keys",
                    "new_credentials",
                )
            },
        ),
    )

    @admin.display(description=_("stored credential fields"))
    def credential_keys(self, obj):
        try:
            keys = sorted(obj.credentials)
        except ValueError as exc:
            return str(exc)
        return ", ".join(keys) or "—"

    @admin.display(description=_("notify URL to register"))
    def notify_url_display(self, obj):
        return obj.notify_url() if obj.pk else "—"

    @admin.display(description=_("methods served"))
    def method_names(self, obj):
        labels = dict(Method.choices)
        return "、".join(str(labels.get(m, m)) for m in obj.methods or []) or "—"

    @admin.display(description=_("breaker"))
    def breaker(self, obj):
        from payments.health import breaker_states

        state = breaker_states([obj.code])[obj.code]
        return dict(ChannelHealth.Breaker.choices).get(state, state)

    @admin.display(description=_("recent success"))
    def success_rate(self, obj):
        recent = obj.attempts.order_by("-created_at")[:200]
        done = [
            a.status for a in recent if a.status in ("succeeded", "failed", "expired", "cancelled")
        ]
        if not done:
            return "—"
        return _("%(rate).0f%% of %(n)d") % {
            "rate": 100 * done.count("succeeded") / len(done),
            "n": len(done),
        }


@admin.register(Notification)
class NotificationAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "received_at",
        "channel_code",
        "outcome",
        "flagged",
        "attempt",
        "refund",
        "remote_addr",
        "detail",
    )
    list_filter = ("outcome", "flagged", "channel_code")
    search_fields = ("detail", "attempt__out_trade_no")
    exclude = ("body",)
    readonly_fields = ("body_text",)

    @admin.display(description=_("body"))
    def body_text(self, obj):
        return format_html("<pre>{}</pre>", bytes(obj.body)[:20000].decode("utf-8", "replace"))


@admin.register(NotificationRefusal)
class NotificationRefusalAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Notify requests refused unread (docs/security.md): counted, never stored."""

    list_display = (
        "day",
        "channel_code",
        "reason",
        "count",
        "bytes",
        "last_at",
        "last_remote_addr",
    )
    list_filter = ("reason", "channel_code")
    date_hierarchy = "day"


@admin.register(ErrorCode)
class ErrorCodeAdmin(admin.ModelAdmin):
    list_display = ("backend", "code", "action", "counts_against_channel", "reason_zh", "reason_en")
    list_filter = ("backend", "action", "counts_against_channel")
    search_fields = ("code", "reason_zh", "reason_en")


@admin.register(ChannelHealth)
class ChannelHealthAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("account", "breaker", "opened_at", "updated_at")
    list_select_related = ("account",)
    readonly_fields = ("state_pretty",)

    @admin.display(description=_("state"))
    def state_pretty(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.state, indent=2, ensure_ascii=False))


@admin.register(BreakerEvent)
class BreakerEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("at", "account", "from_state", "to_state", "reason")
    list_filter = ("account", "to_state")

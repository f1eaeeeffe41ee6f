"""Finance's back office for the payment platform. Secrets are write-only; money records
are read-only (changes go through services: refunds, corrections as new entries)."""

import datetime as dt
import json
from decimal import Decimal
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, Q, Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from payments import services
from payments.channels.registry import backend_class, backend_codes
from payments.explain import risk_table, routing_table
from payments.ledger_labels import account_label, kind_choices, kind_label
from payments.models import (
    Attempt,
    BreakerEvent,
    ChannelAccount,
    ChannelHealth,
    ErrorCode,
    JournalEntry,
    JournalLine,
    LedgerAccount,
    Method,
    Notification,
    NotificationRefusal,
    Payment,
    Refund,
)
from payments.money import format_money
from payments.selectors import trial_balance
from payments.states import RefundStatus


def _each(modeladmin, request, queryset, act, done: str, *, name) -> None:
    """Apply ``act`` to each selected object: each refusal named with its reason, the rest
    counted in ``done``."""
    ok = 0
    for obj in queryset:
        try:
            act(obj)
        except services.PaymentError as exc:
            modeladmin.message_user(request, f"{name(obj)}: {exc}", messages.ERROR)
        else:
            ok += 1
    if ok:
        modeladmin.message_user(request, done % {"n": ok}, messages.SUCCESS)


def money_column(name: str, description, currency_field: str = "currency"):
    """A list column that shows a money field as ¥1,234.56 and still sorts by it."""

    @admin.display(description=description, ordering=name)
    def show(obj):
        return format_money(getattr(obj, name), getattr(obj, currency_field, "CNY") or "CNY")

    show.__name__ = f"{name}_money"
    return show


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ChannelAccountForm(forms.ModelForm):
    backend = forms.ChoiceField(choices=[])
    methods = forms.MultipleChoiceField(choices=Method.choices, widget=forms.CheckboxSelectMultiple)
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


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    can_delete = False
    fields = (
        "out_trade_no",
        "account",
        "status",
        "amount",
        "fee",
        "error_code",
        "flagged",
        "routing_summary",
        "created_at",
    )
    readonly_fields = fields

    @admin.display(description=_("routing"))
    def routing_summary(self, obj):
        return routing_table(obj.routing or {})

    def has_add_permission(self, request, obj=None):
        return False


class RefundInline(admin.TabularInline):
    model = Refund
    extra = 0
    can_delete = False
    fields = (
        "refund_no",
        "amount",
        "status",
        "origin",
        "reason",
        "error",
        "created_at",
        "settled_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class RefundForm(forms.Form):
    amount = forms.DecimalField(label=_("amount"), min_value=Decimal("0.01"), decimal_places=2)
    reason = forms.CharField(label=_("reason"), max_length=255)


@admin.register(Payment)
class PaymentAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "reference",
        "buyer",
        "method",
        money_column("amount", _("amount")),
        "status",
        money_column("refunded_amount", _("refunded")),
        "risk_summary",
    )
    list_filter = ("status", "method", "currency")
    search_fields = (
        "reference",
        "public_id",
        "attempts__out_trade_no",
        "attempts__channel_trade_no",
        "buyer__username",
    )
    inlines = [AttemptInline, RefundInline]
    actions = ["refund_in_full", "release_held", "block_held"]
    date_hierarchy = "created_at"
    exclude = ("risk", "client")
    readonly_fields = ("risk_explained", "client_explained", "journal")

    @admin.display(description=_("journal entries"))
    def journal(self, obj):
        return entries_link(obj.reference)

    @admin.display(description=_("risk assessment"))
    def risk_explained(self, obj):
        return risk_table(obj.risk or {})

    @admin.display(description=_("client"))
    def client_explained(self, obj):
        return risk_table(obj.client or {})

    change_form_template = "admin/payments/payment/change_form.html"

    def get_urls(self):
        from django.urls import path

        return [
            path(
                "<int:pk>/refund/",
                self.admin_site.admin_view(self.refund_view),
                name="payments_payment_refund",
            ),
            *super().get_urls(),
        ]

    def refund_view(self, request, pk):
        """Finance refunds part or all of a paid payment; Support opens a refund for Finance to
        approve. The service enforces the limits."""
        from django.core.exceptions import PermissionDenied
        from django.shortcuts import get_object_or_404, redirect
        from django.template.response import TemplateResponse

        if not self.has_refund_permission(request):
            raise PermissionDenied
        payment = get_object_or_404(Payment, pk=pk)
        form = RefundForm(request.POST or None, initial={"amount": payment.refundable_amount})
        if request.method == "POST" and form.is_valid():
            try:
                refund = services.refund_request(
                    payment=payment,
                    amount=form.cleaned_data["amount"],
                    reason=form.cleaned_data["reason"],
                    origin=Refund.Origin.STAFF,
                    requested_by=request.user,
                    needs_approval=self._needs_approval(request),
                )
            except services.PaymentError as exc:
                form.add_error("amount", str(exc))
            else:
                if refund.status == RefundStatus.REQUESTED:
                    self.message_user(
                        request,
                        _("Refund opened; Finance will approve it before it is sent."),
                        messages.SUCCESS,
                    )
                else:
                    self.message_user(request, _("Refund requested."), messages.SUCCESS)
                return redirect("admin:payments_payment_change", payment.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Refund %(ref)s") % {"ref": payment.reference},
            "payment": payment,
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/payments/payment/refund.html", context)

    @admin.action(description=_("Refund in full (what is left)"), permissions=["refund"])
    def refund_in_full(self, request, queryset):
        needs_approval = self._needs_approval(request)
        _each(
            self,
            request,
            queryset,
            lambda payment: services.refund_request(
                payment=payment,
                amount=payment.refundable_amount,
                reason="refund in full",
                origin=Refund.Origin.STAFF,
                requested_by=request.user,
                needs_approval=needs_approval,
            ),
            _("%(n)d refund(s) requested."),
            name=lambda payment: payment.reference,
        )

    def has_refund_permission(self, request):
        return request.user.has_perm("payments.add_refund")

    def _needs_approval(self, request) -> bool:
        return not request.user.has_perm("payments.approve_refund")

    @admin.display(description=_("risk"))
    def risk_summary(self, obj):
        from payments.explain import DECISIONS

        risk = obj.risk or {}
        if not risk:
            return "—"
        decision = DECISIONS.get(risk.get("decision"), risk.get("decision", ""))
        return f"{risk.get('score', '?')} {decision}：{'、'.join(risk.get('reasons') or []) or '—'}"

    # The review queue: the list filtered on status "held for review", these two actions.

    @admin.action(description=_("Release for payment (held for review)"), permissions=["review"])
    def release_held(self, request, queryset):
        self._review(request, queryset, approve=True)

    @admin.action(description=_("Block (held for review)"), permissions=["review"])
    def block_held(self, request, queryset):
        self._review(request, queryset, approve=False)

    def _review(self, request, queryset, *, approve: bool):
        reviewer = request.user.get_username()
        _each(
            self,
            request,
            queryset,
            lambda payment: services.payment_review_decide(
                payment=payment, approve=approve, reviewer=reviewer
            ),
            _("%(n)d payment(s) released.") if approve else _("%(n)d payment(s) blocked."),
            name=lambda payment: payment.reference,
        )

    def has_review_permission(self, request):
        return request.user.has_perm("payments.review_payment")


@admin.register(Refund)
class RefundAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "refund_no",
        "payment",
        money_column("amount", _("amount")),
        "status",
        "origin",
        "reason",
        "requested_by",
        "approved_by",
        "error",
    )
    list_select_related = ("payment", "requested_by", "approved_by")
    list_filter = ("status", "origin")
    search_fields = ("refund_no", "payment__reference")
    actions = ["approve_requested", "decline_requested"]
    readonly_fields = ("journal",)

    @admin.display(description=_("journal entries"))
    def journal(self, obj):
        url = (
            reverse("admin:payments_journalentry_changelist")
            + "?"
            + urlencode({"q": obj.refund_no})
        )
        return format_html('<a href="{}">{}</a>', url, _("entries of this refund"))

    # Refunds Support opened wait here (status "awaiting Finance approval") for Finance.

    @admin.action(description=_("Approve and send (awaiting approval)"), permissions=["approve"])
    def approve_requested(self, request, queryset):
        self._decide(request, queryset, approve=True)

    @admin.action(description=_("Decline (awaiting approval)"), permissions=["approve"])
    def decline_requested(self, request, queryset):
        self._decide(request, queryset, approve=False)

    def _decide(self, request, queryset, *, approve: bool):
        _each(
            self,
            request,
            queryset,
            lambda refund: services.refund_decide(refund=refund, approve=approve, by=request.user),
            _("%(n)d refund(s) approved and sent.") if approve else _("%(n)d refund(s) declined."),
            name=lambda refund: refund.refund_no,
        )

    def has_approve_permission(self, request):
        return request.user.has_perm("payments.approve_refund")


@admin.register(Attempt)
class AttemptAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "out_trade_no",
        "account",
        "method",
        money_column("amount", _("amount")),
        "status",
        "error_code",
        "flagged",
    )
    list_select_related = ("account",)
    list_filter = ("status", "account", "method")
    search_fields = ("out_trade_no", "channel_trade_no", "payment__reference")
    exclude = ("routing",)
    readonly_fields = ("routing_pretty",)

    @admin.display(description=_("routing decision"))
    def routing_pretty(self, obj):
        return routing_table(obj.routing or {})


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


class JournalLineInline(admin.TabularInline):
    """The lines of an entry as a finance person reads them: account, debit, credit."""

    model = JournalLine
    extra = 0
    can_delete = False
    fields = ("account_name", "debit", "credit")
    readonly_fields = fields
    verbose_name = _("line")
    verbose_name_plural = _("lines")
    classes = ["journal-lines"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("account__owner").order_by("pk")

    @admin.display(description=_("account"))
    def account_name(self, obj):
        url = reverse("admin:payments_ledgeraccount_change", args=[obj.account_id])
        return format_html(
            '<a href="{}">{}</a> <span class="quiet">{}</span>',
            url,
            _account_label(obj.account),
            obj.account.code,
        )

    @admin.display(description=_("debit"))
    def debit(self, obj):
        return format_money(obj.amount, obj.currency) if obj.amount > 0 else ""

    @admin.display(description=_("credit"))
    def credit(self, obj):
        return format_money(-obj.amount, obj.currency) if obj.amount < 0 else ""

    def has_add_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        # Whoever may read the entry reads its lines; nobody changes either.
        return request.user.has_perm("payments.view_journalentry")


def _account_label(acc: LedgerAccount) -> str:
    return account_label(acc.code, acc.owner.get_username() if acc.owner_id else "")


class KindFilter(admin.SimpleListFilter):
    title = _("kind")
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return kind_choices()

    def queryset(self, request, queryset):
        return queryset.filter(kind=self.value()) if self.value() else queryset


class EntryAccountFilter(admin.SimpleListFilter):
    """Entries that touch one account. Offers the platform and channel accounts (a bounded
    list); a buyer's or seller's account is reached from its own page."""

    title = _("account")
    parameter_name = "account"

    def lookups(self, request, model_admin):
        shared = LedgerAccount.objects.filter(owner__isnull=True).order_by("code")
        chosen = LedgerAccount.objects.filter(pk=self.value()) if _is_id(self.value()) else []
        found = {acc.pk: acc for acc in [*shared[:200], *chosen]}
        return [(str(pk), _account_label(acc)) for pk, acc in found.items()]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        if not _is_id(self.value()):
            return queryset.none()
        lines = JournalLine.objects.filter(entry=OuterRef("pk"), account_id=self.value())
        return queryset.filter(Exists(lines))


def _is_id(value) -> bool:
    return bool(value) and str(value).isdigit()


def reference_admin_url(reference: str) -> str | None:
    """Where a journal reference leads: the order, payout or payment it names."""
    kind, _sep, rest = reference.partition(":")
    if kind == "order" and rest:
        return reverse("admin:marketplace_order_changelist") + "?" + urlencode({"q": rest})
    if kind == "payout" and rest.isdigit():
        return reverse("admin:marketplace_payout_change", args=[rest])
    if reference:
        return reverse("admin:payments_payment_changelist") + "?" + urlencode({"q": reference})
    return None


def entries_link(reference: str, label=None):
    """A link to the journal entries that carry ``reference`` (from a payment, order...)."""
    if not reference:
        return "—"
    url = (
        reverse("admin:payments_journalentry_changelist")
        + "?"
        + urlencode({"reference": reference})
    )
    count = JournalEntry.objects.filter(reference=reference).count()
    return format_html(
        '<a href="{}">{}</a>', url, label or _("%(n)d journal entries") % {"n": count}
    )


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("posted_at", "kind_name", "reference_link", "memo", "amount")
    list_filter = (KindFilter, EntryAccountFilter, ("posted_at", admin.DateFieldListFilter))
    search_fields = ("key", "reference", "memo")
    date_hierarchy = "posted_at"
    fields = ("posted_at", "kind_name", "reference_link", "memo", "key", "totals")
    readonly_fields = fields
    inlines = [JournalLineInline]
    change_list_template = "admin/payments/journalentry/change_list.html"

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs.annotate(_debit=Sum("lines__amount", filter=Q(lines__amount__gt=0)))

    def lookup_allowed(self, lookup, value, request=None):
        return lookup == "reference" or super().lookup_allowed(lookup, value, request)

    def get_urls(self):
        from django.urls import path

        return [
            path(
                "trial-balance/",
                self.admin_site.admin_view(self.trial_balance_view),
                name="payments_trial_balance",
            ),
            *super().get_urls(),
        ]

    def trial_balance_view(self, request):
        """Every account's debits, credits and balance for a period (default: this month)."""
        from django.core.exceptions import PermissionDenied
        from django.template.response import TemplateResponse

        if not self.has_view_permission(request):
            raise PermissionDenied
        form = PeriodForm(request.GET or None)
        since, until = form.period()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "title": _("Trial balance"),
            "tb": trial_balance(since=since, until=until),
            "until_shown": until - dt.timedelta(days=1),
        }
        return TemplateResponse(request, "admin/payments/trial_balance.html", context)

    @admin.display(description=_("kind"), ordering="kind")
    def kind_name(self, obj):
        return kind_label(obj.kind)

    @admin.display(description=_("reference"), ordering="reference")
    def reference_link(self, obj):
        url = reference_admin_url(obj.reference)
        return format_html('<a href="{}">{}</a>', url, obj.reference) if url else "—"

    @admin.display(description=_("amount"), ordering="_debit")
    def amount(self, obj):
        return format_money(obj._debit)

    @admin.display(description=_("totals"))
    def totals(self, obj):
        lines = list(obj.lines.all())
        debit = sum((ln.amount for ln in lines if ln.amount > 0), Decimal("0"))
        credit = -sum((ln.amount for ln in lines if ln.amount < 0), Decimal("0"))
        currency = lines[0].currency if lines else "CNY"
        verdict = _("balanced") if debit == credit else _("NOT balanced")
        return format_html(
            "{} {} · {} {} · <strong>{}</strong>",
            _("debit total"),
            format_money(debit, currency),
            _("credit total"),
            format_money(credit, currency),
            verdict,
        )


class PeriodForm(forms.Form):
    """A period of whole days, ``since`` to ``until`` inclusive; this month by default."""

    since = forms.DateField(
        label=_("from"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("to (inclusive)"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise forms.ValidationError(_("The period ends before it starts."))
        return data

    def period(self) -> tuple[dt.datetime, dt.datetime]:
        today = timezone.localdate()
        since, until = today.replace(day=1), today
        if self.is_bound and self.is_valid():
            since = self.cleaned_data.get("since") or since
            until = self.cleaned_data.get("until") or until
        tz = timezone.get_current_timezone()
        start = dt.datetime.combine(since, dt.time.min, tzinfo=tz)
        end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
        return start, end


class OwnedFilter(admin.SimpleListFilter):
    title = _("whose")
    parameter_name = "whose"

    def lookups(self, request, model_admin):
        return [
            ("platform", _("platform and channels")),
            ("buyer", _("buyers")),
            ("seller", _("sellers")),
        ]

    def queryset(self, request, queryset):
        if self.value() == "platform":
            return queryset.filter(owner__isnull=True)
        if self.value() in {"buyer", "seller"}:
            return queryset.filter(code__startswith=self.value() + ":")
        return queryset


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("name", "code", "kind", "currency", "owner", "balance", "entries")
    list_filter = ("kind", OwnedFilter)
    list_select_related = ("owner",)
    search_fields = ("code", "owner__username")
    fields = ("name", "code", "kind", "currency", "owner", "balance", "entries")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_balance=Sum("lines__amount"))

    @admin.display(description=_("name"))
    def name(self, obj):
        return _account_label(obj)

    @admin.display(description=_("balance (debit +)"), ordering="_balance")
    def balance(self, obj):
        return format_money(obj._balance or Decimal("0.00"), obj.currency)

    @admin.display(description=_("journal entries"))
    def entries(self, obj):
        url = (
            reverse("admin:payments_journalentry_changelist") + "?" + urlencode({"account": obj.pk})
        )
        return format_html('<a href="{}">{}</a>', url, _("entries of this account"))

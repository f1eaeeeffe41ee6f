"""The ledger as Finance reads it: entries with their lines (debit, credit in ¥), accounts
with balances, the trial balance; read-only for everyone."""

import datetime as dt
from decimal import Decimal
from urllib.parse import urlencode

from django import forms
from django.contrib import admin
from django.db.models import Exists, OuterRef, Q, Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from payments.admin.common import ReadOnlyMixin
from payments.fx import rate_text
from payments.ledger_labels import account_label, kind_choices, kind_label
from payments.models import JournalEntry, JournalLine, LedgerAccount
from payments.money import format_money
from payments.selectors import trial_balance


class JournalLineInline(admin.TabularInline):
    """The lines of an entry as a finance person reads them: account, debit, credit."""

    model = JournalLine
    extra = 0
    can_delete = False
    fields = ("account_name", "debit", "credit", "foreign")
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

    @admin.display(description=_("charged as"))
    def foreign(self, obj):
        """The buyer's currency behind a CNY line: ``US$13.87 at 7.1375``."""
        if not obj.foreign_currency or obj.foreign_amount is None:
            return ""
        return _("%(amount)s at %(rate)s") % {
            "amount": format_money(obj.foreign_amount, obj.foreign_currency),
            "rate": rate_text(obj.fx_rate) if obj.fx_rate else "—",
        }

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

"""Staff groups and the permissions each job needs (DESIGN.md §1) — and no more."""

from django.apps import apps as global_apps
from django.db import DEFAULT_DB_ALIAS

FINANCE, RISK, SUPPORT = "Finance", "Risk", "Support"
STAFF_GROUPS = (FINANCE, RISK, SUPPORT)

# "app_label.action_model"; permissions of models that do not exist (yet) are skipped.
GROUP_PERMISSIONS: dict[str, list[str]] = {
    FINANCE: [
        "payments.view_channelaccount",
        "payments.change_channelaccount",
        "payments.add_channelaccount",
        "payments.view_payment",
        "payments.view_attempt",
        "payments.view_refund",
        "payments.add_refund",
        "payments.change_refund",
        "payments.approve_refund",
        "payments.view_notification",
        "payments.view_notificationrefusal",
        "payments.view_journalentry",
        "payments.view_ledgeraccount",
        "payments.view_errorcode",
        "payments.change_errorcode",
        "payments.view_breakerevent",
        "payments.view_fxrate",
        "payments.add_fxrate",
        "payments.change_fxrate",
        "payments.view_providerdispute",
        "marketplace.view_order",
        "marketplace.view_payout",
        "marketplace.change_payout",
        "marketplace.view_dispute",
        "marketplace.change_dispute",
        "marketplace.view_listing",
        "marketplace.view_brand",
        "marketplace.view_cardcode",
        "marketplace.view_revealaudit",
        "reconciliation.view_settlementfile",
        "reconciliation.add_settlementfile",
        "reconciliation.view_discrepancy",
        "reconciliation.change_discrepancy",
        "reconciliation.view_statement",
        "reconciliation.view_sellerclearing",
        "django_celery_beat.view_periodictask",
        "auditlog.view_logentry",
        "backoffice.export_data",
        "reconciliation.view_reconcilerun",
        "reconciliation.view_settlementday",
        "reconciliation.view_reconciliationalert",
        "reconciliation.view_accountpolicy",
        "reconciliation.add_accountpolicy",
        "reconciliation.change_accountpolicy",
        "reconciliation.view_holiday",
        "reconciliation.add_holiday",
        "reconciliation.change_holiday",
        "reconciliation.delete_holiday",
    ],
    RISK: [
        "risk.view_rule",
        "risk.add_rule",
        "risk.change_rule",
        "risk.delete_rule",
        "risk.view_listentry",
        "risk.add_listentry",
        "risk.change_listentry",
        "risk.delete_listentry",
        "risk.view_assessment",
        "risk.change_assessment",
        "risk.view_monitor",
        "risk.add_monitor",
        "risk.change_monitor",
        "risk.delete_monitor",
        "risk.view_alert",
        "risk.change_alert",
        "payments.view_payment",
        "payments.view_attempt",
        "payments.view_breakerevent",
        "payments.review_payment",
        "marketplace.view_order",
        "marketplace.view_dispute",
        "marketplace.view_listing",
        "marketplace.change_listing",
        "auditlog.view_logentry",
    ],
    SUPPORT: [
        "marketplace.view_order",
        "marketplace.view_dispute",
        "marketplace.change_dispute",
        "marketplace.view_listing",
        "marketplace.view_brand",
        "marketplace.view_cardcode",
        "marketplace.view_revealaudit",
        "payments.view_payment",
        "payments.view_attempt",
        "payments.add_refund",
        "payments.view_refund",
        "payments.view_providerdispute",
        "accounts.view_user",
        "axes.view_accessattempt",
        "axes.delete_accessattempt",
    ],
}


def sync_staff_groups(sender=None, using=DEFAULT_DB_ALIAS, apps=global_apps, **kwargs):
    """Create the staff groups and set exactly their permissions (idempotent, after migrate)."""
    try:
        Group = apps.get_model("auth", "Group")
        Permission = apps.get_model("auth", "Permission")
    except LookupError:
        return
    for name, perms in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.using(using).get_or_create(name=name)
        wanted = []
        for dotted in perms:
            app_label, codename = dotted.split(".", 1)
            perm = (
                Permission.objects.using(using)
                .filter(content_type__app_label=app_label, codename=codename)
                .first()
            )
            if perm:
                wanted.append(perm)
        group.permissions.set(wanted)

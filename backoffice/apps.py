from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BackofficeConfig(AppConfig):
    """The staff's home: dashboard, exports, the audit trail's admin and the admin's look."""

    name = "backoffice"
    verbose_name = _("Back office")

    def ready(self):
        from django.contrib import admin

        from backoffice.audit_admin import audit_admin_actions

        admin.site.site_header = _("Cardex back office")
        admin.site.site_title = _("Cardex back office")
        admin.site.index_title = _("Dashboard")
        audit_admin_actions(admin.site)

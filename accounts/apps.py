from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        from accounts import checks  # noqa: F401  (registers the deploy checks)
        from accounts.roles import sync_staff_groups

        post_migrate.connect(sync_staff_groups, dispatch_uid="accounts.sync_staff_groups")

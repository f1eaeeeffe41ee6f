from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts import services
from accounts.models import User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    fieldsets = (
        *BaseUserAdmin.fieldsets,
        (
            _("Profile"),
            {"fields": ("display_name", "phone", "preferred_language", "preferred_currency")},
        ),
    )
    list_display = ("username", "email", "display_name", "is_staff", "date_joined")
    actions = ["unlock_login"]

    def has_unlock_permission(self, request) -> bool:
        return request.user.has_perm("axes.delete_accessattempt")

    @admin.action(description=_("Unlock log-in (clear failed attempts)"), permissions=["unlock"])
    def unlock_login(self, request, queryset):
        cleared = services.user_login_unlock(usernames=queryset.values_list("username", flat=True))
        self.message_user(
            request,
            ngettext(
                "Cleared %(n)d locked or failed log-in record.",
                "Cleared %(n)d locked or failed log-in records.",
                cleared,
            )
            % {"n": cleared},
            messages.SUCCESS,
        )

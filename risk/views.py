"""Staff pages of the risk desk."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from risk.selectors import monitoring_dashboard


def _may_watch(user) -> bool:
    """Staff with the Risk group's permission on monitors (or superusers)."""
    return user.is_active and user.is_staff and user.has_perm("risk.view_monitor")


@login_required
def monitoring(request):
    """Success, dispute and fraud rates per channel × method, with the open alerts on top."""
    if not _may_watch(request.user):
        raise PermissionDenied
    return render(request, "risk/monitoring.html", {"dashboard": monitoring_dashboard()})

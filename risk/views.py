"""Staff pages of the risk desk."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from risk.monitoring import metrics
from risk.selectors import monitoring_dashboard


def _may_watch(user) -> bool:
    """Staff with the Risk group's permission on monitors (or superusers)."""
    return user.is_active and user.is_staff and user.has_perm("risk.view_monitor")


def _may_read_success_rates(user) -> bool:
    """Finance (who may read the ledger) sees the payment success-rate panels only."""
    return user.is_active and user.is_staff and user.has_perm("payments.view_ledgeraccount")


@login_required
def monitoring(request):
    """Success, dispute and fraud rates per channel × method, with the open alerts on top."""
    if _may_watch(request.user):
        dashboard = monitoring_dashboard()
    elif _may_read_success_rates(request.user):
        names = [m.name for m in metrics() if m.name.endswith("success_rate")]
        dashboard = monitoring_dashboard(metric_names=names, with_alerts=False)
    else:
        raise PermissionDenied
    return render(
        request, "risk/monitoring.html", {"dashboard": dashboard, "full": _may_watch(request.user)}
    )

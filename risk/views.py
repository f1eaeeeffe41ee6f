"""Staff pages of the risk desk, and the account owner's sessions page."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods

from risk.logins import open_sessions
from risk.monitoring import metrics
from risk.selectors import monitoring_dashboard
from risk.services import sessions_end_others


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


@login_required
@require_http_methods(["GET", "POST"])
def sessions(request):
    """The account's open sessions (device, region, time); POST ends all but this one."""
    user_ref = str(request.user.pk)
    current = request.session.session_key or ""
    if request.method == "POST":
        ended = sessions_end_others(user_ref=user_ref, keep_session_key=current)
        messages.success(
            request,
            ngettext("%(n)d other session was ended.", "%(n)d other sessions were ended.", ended)
            % {"n": ended}
            if ended
            else _("There were no other sessions."),
        )
        return redirect("risk:sessions")
    return render(
        request,
        "risk/sessions.html",
        {"logins": open_sessions(user_ref), "current": current},
    )

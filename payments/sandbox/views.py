"""The sandbox cashier: where a person (or a browser test) approves or declines a payment."""

from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from config.prepared import PreparedRead
from payments.sandbox import core
from payments.sandbox.cashier import cashier_labels
from payments.sandbox.models import SandboxFault, SandboxTrade


def _provider(channel):
    try:
        return core.provider(channel)
    except LookupError:
        raise Http404("unknown sandbox channel") from None


@csrf_exempt  # the provider's page: the merchant's CSRF token does not apply here
@require_http_methods(["GET", "POST"])
def cashier(request, channel, trade_no):
    impl = _provider(channel)
    trade = _TRADE.first(channel=channel, trade_no=trade_no)
    if trade is None:
        raise Http404("no such trade")
    if request.method == "POST" and trade.status == SandboxTrade.Status.WAITING:
        approve = request.POST.get("decision") == "approve"
        trade = impl.settle(trade, approve=approve, decline_key=request.POST.get("reason", ""))
        if trade.return_url and request.POST.get("return", "1") == "1":
            return redirect(trade.return_url)
    return render(
        request,
        "sandbox/cashier.html",
        {"trade": trade, "labels": cashier_labels(trade, impl), "channel": channel},
    )


_TRADE = PreparedRead(
    lambda channel, trade_no: SandboxTrade.objects.filter(channel=channel, trade_no=trade_no),
    channel=str,
    trade_no=str,
)


@require_http_methods(["GET"])
def index(request):
    faults = {f.channel: f for f in SandboxFault.objects.all()}
    rows = [{"channel": c, "fault": faults.get(c)} for c in sorted(core.providers())]
    trades = SandboxTrade.objects.order_by("-created_at")[:50]
    return render(request, "sandbox/index.html", {"rows": rows, "trades": trades})

from django.contrib import messages
from django.contrib.auth import login
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from accounts import throttles
from accounts.forms import SignUpForm


@require_http_methods(["GET", "POST"])
@throttles.throttle(throttles.SIGNUP)
def signup(request):
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, _("Welcome to Cardex, %(name)s.") % {"name": user.public_name})
        return redirect("marketplace:catalogue")
    return render(request, "registration/signup.html", {"form": form})

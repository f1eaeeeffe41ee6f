"""A per-address rate on every log-in form and the API token call.

django-axes locks one username from one address after a few failures; this rate stops one
address from walking through many usernames. It sits in middleware so the admin's own
log-in view is covered without replacing it.
"""

from django.conf import settings

from accounts import throttles

LOGIN_PATHS = frozenset({settings.LOGIN_URL, "/admin/login/", "/api/v1/auth/token/"})


class LoginRateMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method == "POST" and request.path in LOGIN_PATHS:
            wait = throttles.throttle_wait(request, throttles.LOGIN)
            if wait is not None:
                return throttles.rate_limited_response(request, wait)
        return self.get_response(request)

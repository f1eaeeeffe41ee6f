"""Authentication backends: the lock-out check runs before the password is even compared."""

from axes.backends import AxesStandaloneBackend


class LockoutBackend(AxesStandaloneBackend):
    """django-axes' lock-out check for log-ins that come with a request (site, admin, API).

    ``authenticate()`` called from code without a request (a shell, a management command, a
    test) has no address to lock and is not a guess from outside: it passes through to the
    next backend instead of failing.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)

"""Account services that staff actions call."""

from collections.abc import Iterable

from axes.utils import reset


def user_login_unlock(*, usernames: Iterable[str]) -> int:
    """Clear django-axes' failed attempts of these usernames (from every address): they can
    log in again at once. Returns how many attempt records were removed."""
    return sum(reset(username=username) for username in usernames)

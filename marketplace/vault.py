"""The card vault: codes and PINs encrypted at rest with rotating keys (DESIGN.md §5).

``settings.CARD_VAULT_KEYS`` lists Fernet keys newest first: the newest encrypts, all of them
decrypt, so a new key can be put in front and old tokens re-encrypted at leisure
(``manage.py rotate_card_keys``). Duplicates are found through a keyed fingerprint
(HMAC-SHA256 with ``settings.CARD_VAULT_FINGERPRINT_KEY``) of the normalised code, which
never changes when vault keys rotate and reveals nothing without its key.

Nothing in this module logs, and no value it returns prints a secret in its ``repr``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.views.decorators.debug import sensitive_variables

_SEPARATORS = re.compile(r"[\s\-]+")


class VaultError(Exception):
    """A token the configured keys cannot open (a key was removed too early)."""


def normalise_code(raw: str) -> str:
    """What we store and compare: the code without spaces or dashes people type for
    readability ("1234-5678 9012" and "123456789012" are the same card)."""
    return _SEPARATORS.sub("", raw or "")


def normalise_pin(raw: str) -> str:
    return _SEPARATORS.sub("", raw or "")


HINT_LENGTH = 4


def hint(code: str) -> str:
    """The last characters of a code, kept in clear so sellers and buyers can tell codes
    apart (``****1234``) without anyone decrypting the rest."""
    return normalise_code(code)[-HINT_LENGTH:]


@lru_cache(maxsize=8)
def _fernets(keys: tuple[str, ...]) -> tuple[MultiFernet, Fernet]:
    if not keys:
        raise VaultError("CARD_VAULT_KEYS is empty: no key to encrypt card secrets with.")
    fernets = [Fernet(key) for key in keys]
    return MultiFernet(fernets), fernets[0]


def _vault() -> MultiFernet:
    return _fernets(tuple(settings.CARD_VAULT_KEYS))[0]


@sensitive_variables()
def encrypt(plaintext: str) -> bytes:
    """A Fernet token of ``plaintext`` under the newest key (empty stays empty: no PIN)."""
    if not plaintext:
        return b""
    return _vault().encrypt(plaintext.encode("utf-8"))


@sensitive_variables()
def decrypt(token: bytes | memoryview) -> str:
    token = bytes(token or b"")
    if not token:
        return ""
    try:
        return _vault().decrypt(token).decode("utf-8")
    except InvalidToken:
        raise VaultError(
            "A card secret cannot be decrypted with the configured CARD_VAULT_KEYS."
        ) from None


def is_current(token: bytes | memoryview) -> bool:
    """True when the token is already encrypted with the newest key (rotation skips it)."""
    token = bytes(token or b"")
    if not token:
        return True
    newest = _fernets(tuple(settings.CARD_VAULT_KEYS))[1]
    try:
        newest.decrypt(token)
    except InvalidToken:
        return False
    return True


@sensitive_variables()
def rotate(token: bytes | memoryview) -> bytes:
    """The same secret re-encrypted with the newest key."""
    token = bytes(token or b"")
    if not token:
        return b""
    try:
        return _vault().rotate(token)
    except InvalidToken:
        raise VaultError(
            "A card secret cannot be decrypted with the configured CARD_VAULT_KEYS."
        ) from None


@sensitive_variables()
def fingerprint(code: str) -> str:
    """Keyed HMAC-SHA256 of the normalised, upper-cased code, as 64 hex digits."""
    key = settings.CARD_VAULT_FINGERPRINT_KEY
    if isinstance(key, str):
        key = key.encode("utf-8")
    message = normalise_code(code).upper().encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()

"""Channel credentials at rest: encrypted with rotating keys, never shown back."""

import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(k) for k in settings.CHANNEL_CREDENTIAL_KEYS])


def encrypt_credentials(value: dict) -> bytes:
    if not value:
        return b""
    return _fernet().encrypt(json.dumps(value, sort_keys=True).encode())


def decrypt_credentials(token: bytes) -> dict:
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token))
    except InvalidToken as exc:
        raise ValueError(
            "Channel credentials cannot be decrypted with the configured keys."
        ) from exc

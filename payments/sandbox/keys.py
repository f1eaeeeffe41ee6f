"""The simulated providers' own key pairs: generated on first use, kept under var/sandbox/."""

from __future__ import annotations

import functools
import threading
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings

_lock = threading.Lock()


def _key_dir() -> Path:
    path = Path(getattr(settings, "SANDBOX_KEY_DIR", settings.VAR_DIR / "sandbox"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def generate_rsa_private_pem(bits: int = 2048) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@functools.lru_cache(maxsize=64)
def private_key_of(private_pem: str):
    """The parsed key, kept: parsing checks the RSA key, ~30 ms of CPU, once per PEM not per
    signature (the simulators sign every answer and notice)."""
    return serialization.load_pem_private_key(private_pem.encode(), password=None)


def public_pem_of(private_pem: str) -> str:
    key = private_key_of(private_pem)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def provider_private_pem(name: str) -> str:
    """The provider's signing key called ``name`` (e.g. "alipay"), created once per machine."""
    path = _key_dir() / f"{name}.key.pem"
    with _lock:
        if not path.exists():
            path.write_text(generate_rsa_private_pem())
            path.chmod(0o600)
        return path.read_text()


def provider_public_pem(name: str) -> str:
    return public_pem_of(provider_private_pem(name))


def provider_file(name: str, factory) -> str:
    """Any other provider artefact (certificates, symmetric keys) created once by ``factory``."""
    path = _key_dir() / name
    with _lock:
        if not path.exists():
            path.write_text(factory())
            path.chmod(0o600)
        return path.read_text()


def provider_private_key(name: str):
    """The parsed signing key of provider ``name``."""
    return private_key_of(provider_private_pem(name))

"""SHA256withRSA (PKCS#1 v1.5), the signature Alipay RSA2 and WeChat Pay APIv3 share, with
the key formats their consoles hand out: PEM, or the bare base64 body (PKCS#8 / PKCS#1 /
SubjectPublicKeyInfo), or — for public keys — an X.509 certificate."""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


@lru_cache(maxsize=64)
def rsa_private_key(text: str) -> rsa.RSAPrivateKey:
    data = text.strip()
    if "-----BEGIN" in data:
        key = serialization.load_pem_private_key(data.encode(), password=None)
    else:
        key = serialization.load_der_private_key(base64.b64decode(data), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the signing key must be an RSA private key")
    return key


@lru_cache(maxsize=64)
def rsa_public_key(text: str) -> rsa.RSAPublicKey:
    data = text.strip()
    if "BEGIN CERTIFICATE" in data:
        key = x509.load_pem_x509_certificate(data.encode()).public_key()
    elif "-----BEGIN" in data:
        key = serialization.load_pem_public_key(data.encode())
    else:
        key = serialization.load_der_public_key(base64.b64decode(data))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the verification key must be an RSA public key")
    return key


def sha256_rsa_sign(message: str, private_key: str) -> str:
    """Signature over the UTF-8 bytes, base64 without newlines."""
    signature = rsa_private_key(private_key).sign(
        message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256()
    )
    return base64.b64encode(signature).decode("ascii")


def sha256_rsa_verify(message: str, signature: str, public_key: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
        rsa_public_key(public_key).verify(
            raw, message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256()
        )
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True

"""The simulated UnionPay's CA chain (sandbox root → middle CA) and its signing
certificate, which names 中国银联股份有限公司 as the real one does; messages it sends are
signed with that certificate."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings

from payments.sandbox import keys
from payments.sandbox.unionpay import protocol

# ---------------------------------------------------------------------------------------------
# Certificates


@dataclass(frozen=True)
class Material:
    root_pem: str
    middle_pem: str
    middle_key: rsa.RSAPrivateKey
    sign_key: rsa.RSAPrivateKey
    sign_cert: x509.Certificate
    sign_cert_pem: str


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(x509.NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "Cardex Sandbox CFCA"),
            x509.NameAttribute(x509.NameOID.COMMON_NAME, cn),
        ]
    )


def issue_certificate(
    *,
    subject: str,
    public_key,
    issuer: str,
    issuer_key: rsa.RSAPrivateKey,
    ca: bool,
    days: int = 3650,
    serial: int | None = None,
) -> str:
    """A PEM certificate; CA certificates get BasicConstraints CA:TRUE (checked by backends)."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public_key)
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return (
        builder.sign(issuer_key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode("ascii")
    )


def load_key(pem: str) -> rsa.RSAPrivateKey:
    key = keys.private_key_of(pem)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


ROOT_CN = "Cardex Sandbox UnionPay Root CA"
MIDDLE_CN = "Cardex Sandbox UnionPay Middle CA"
SIGN_CN = f"041@Z12@{protocol.UNIONPAY_CN_NAME}@00000001"


def material() -> Material:
    """The sandbox's CA chain and signing certificate, created once per key directory."""
    return _material(str(getattr(settings, "SANDBOX_KEY_DIR", settings.VAR_DIR / "sandbox")))


def _issued(
    name: str,
    subject: str,
    issuer: str,
    issuer_key: rsa.RSAPrivateKey | None,
    *,
    ca: bool,
    days: int = 3650,
) -> tuple[rsa.RSAPrivateKey, str]:
    """A key pair and its certificate, each created once under the key directory; a CA with
    no ``issuer_key`` signs itself."""
    key = load_key(keys.provider_private_pem(name))
    pem = keys.provider_file(
        f"{name}.cert.pem",
        lambda: issue_certificate(
            subject=subject,
            public_key=key.public_key(),
            issuer=issuer,
            issuer_key=issuer_key or key,
            ca=ca,
            days=days,
        ),
    )
    return key, pem


@functools.lru_cache(maxsize=4)
def _material(_key_dir: str) -> Material:
    root_key, root_pem = _issued("unionpay-root-ca", ROOT_CN, ROOT_CN, None, ca=True)
    middle_key, middle_pem = _issued("unionpay-middle-ca", MIDDLE_CN, ROOT_CN, root_key, ca=True)
    sign_key, sign_pem = _issued(
        "unionpay-sign", SIGN_CN, MIDDLE_CN, middle_key, ca=False, days=1825
    )
    return Material(
        root_pem,
        middle_pem,
        middle_key,
        sign_key,
        x509.load_pem_x509_certificate(sign_pem.encode()),
        sign_pem,
    )


def provider_sign(fields: dict[str, str]) -> dict[str, str]:
    """Sign as UnionPay: signPubKeyCert is part of the signed string (SDK ``validate``)."""
    mat = material()
    return protocol.sign_message(
        {**fields, "signPubKeyCert": mat.sign_cert_pem},
        mat.sign_key,
        str(mat.sign_cert.serial_number),
    )

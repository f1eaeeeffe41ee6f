"""A sandbox CA and the "*.paypal.com" webhook signer it issues; webhook transmissions are
signed with that signer's key (CHANNELS.md §4.2)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from django.urls import reverse
from django.utils import timezone

from payments.sandbox import core, keys
from payments.sandbox.paypal.resources import CHANNEL, iso_time


def load_key(pem: str) -> rsa.RSAPrivateKey:
    key = keys.private_key_of(pem)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def issue_certificate(
    subject: x509.Name, issuer: x509.Name, public_key, signer, *, ca: bool, dns: str = ""
) -> str:
    now = timezone.now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if dns:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False
        )
    return builder.sign(signer, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def ca_material() -> tuple[rsa.RSAPrivateKey, x509.Certificate, str]:
    """The sandbox's root CA (key, certificate, PEM), created once per key directory."""
    key = load_key(keys.provider_file("paypal-webhook-ca.key.pem", keys.generate_rsa_private_pem))
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Cardex Payment Sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Cardex Sandbox PayPal Root CA"),
        ]
    )
    pem = keys.provider_file(
        "paypal-webhook-ca.cert.pem",
        lambda: issue_certificate(name, name, key.public_key(), key, ca=True),
    )
    return key, x509.load_pem_x509_certificate(pem.encode()), pem


def signer_material() -> tuple[rsa.RSAPrivateKey, str, str]:
    """The webhook signing key, its certificate PEM and its name in the cert URL."""
    ca_key, ca_cert, _ = ca_material()
    fingerprint = ca_cert.fingerprint(hashes.SHA256()).hex()
    key = load_key(
        keys.provider_file(
            f"paypal-webhook-signer-{fingerprint[:12]}.key.pem", keys.generate_rsa_private_pem
        )
    )
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "PayPal, Inc. (Cardex sandbox)"),
            x509.NameAttribute(NameOID.COMMON_NAME, "messageverificationcerts.sandbox.paypal.com"),
        ]
    )
    pem = keys.provider_file(
        f"paypal-webhook-signer-{fingerprint[:12]}.cert.pem",
        lambda: issue_certificate(
            subject,
            ca_cert.subject,
            key.public_key(),
            ca_key,
            ca=False,
            dns="messageverificationcerts.sandbox.paypal.com",
        ),
    )
    return key, pem, f"CERT-360caa42-fca2a594-{fingerprint[:8]}"


def cert_url() -> str:
    _key, _pem, name = signer_material()
    return core.own_url() + reverse(f"sandbox:{CHANNEL}:cert", args=[name])


def signature_headers(webhook_id: str, body: bytes) -> dict[str, str]:
    """A fresh transmission: id, time and SHA256withRSA signature over
    ``transmission_id|transmission_time|webhook_id|crc32(body)`` (§4.2)."""
    key, _pem, _name = signer_material()
    transmission_id = str(uuid.uuid4())
    transmission_time = iso_time()
    message = (
        f"{transmission_id}|{transmission_time}|{webhook_id}|{binascii.crc32(body) & 0xFFFFFFFF}"
    )
    signature = base64.b64encode(
        key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())
    ).decode()
    return {
        "PAYPAL-TRANSMISSION-ID": transmission_id,
        "PAYPAL-TRANSMISSION-TIME": transmission_time,
        "PAYPAL-TRANSMISSION-SIG": signature,
        "PAYPAL-CERT-URL": cert_url(),
        "PAYPAL-AUTH-ALGO": "SHA256withRSA",
    }

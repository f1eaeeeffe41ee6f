"""PayPal's STL reports by SFTP (reports.paypal.com, ``/ppreports/outgoing``, CHANNELS.md §4.3).

The account's encrypted credentials hold the settings: ``sftp_host``, ``sftp_port`` (22),
``sftp_username``, ``sftp_password`` and/or ``sftp_private_key`` (PEM or OpenSSH text),
``sftp_directory`` (``/ppreports/outgoing``) and ``sftp_host_key_fingerprint`` — the server's
``SHA256:…`` fingerprint as ``ssh-keygen -lf`` prints it. The host key is pinned: a server
presenting any other key is refused before a password or key is sent.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import io
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

import paramiko

from payments.channels.base import ChannelDeclined, ChannelUnavailable

DEFAULT_DIRECTORY = "/ppreports/outgoing"
TIMEOUT = 30.0
#: Read-ahead requests in flight (32 KiB each): bounds what is buffered while ``dest`` is written.
PREFETCH_REQUESTS = 64
_KEY_CLASSES = (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey)


@dataclass(frozen=True)
class SftpSettings:
    host: str
    port: int
    username: str
    password: str
    private_key: str
    directory: str
    host_key_fingerprint: str

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, Any], account_code: str) -> SftpSettings:
        def required(key: str) -> str:
            value = str(credentials.get(key) or "").strip()
            if not value:
                raise ChannelUnavailable(
                    f"PayPal account {account_code!r} has no {key} configured for SFTP",
                    code="CONFIGURATION",
                )
            return value

        host, username = required("sftp_host"), required("sftp_username")
        fingerprint = required("sftp_host_key_fingerprint")
        password = str(credentials.get("sftp_password") or "")
        private_key = str(credentials.get("sftp_private_key") or "")
        if not password and not private_key:
            raise ChannelUnavailable(
                f"PayPal account {account_code!r} has neither sftp_password nor sftp_private_key",
                code="CONFIGURATION",
            )
        try:
            port = int(credentials.get("sftp_port") or 22)
        except (TypeError, ValueError):
            raise ChannelUnavailable(
                f"PayPal account {account_code!r} has a non-numeric sftp_port", code="CONFIGURATION"
            ) from None
        return cls(
            host=host,
            port=port,
            username=username,
            password=password,
            private_key=private_key,
            directory=str(credentials.get("sftp_directory") or DEFAULT_DIRECTORY).rstrip("/"),
            host_key_fingerprint=normalise_fingerprint(fingerprint),
        )


def configured(credentials: Mapping[str, Any]) -> bool:
    """Whether the account fetches its reports by SFTP (else: the sandbox's HTTP path)."""
    return bool(credentials.get("sftp_host"))


def fingerprint(key: paramiko.PKey) -> str:
    """``SHA256:<unpadded base64>`` of the key's wire form, as OpenSSH prints it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


def normalise_fingerprint(value: str) -> str:
    value = value.strip()
    if not value.upper().startswith("SHA256:"):
        value = "SHA256:" + value
    return "SHA256:" + value[len("SHA256:") :].rstrip("=")


def fetch_report(
    settings: SftpSettings, day: dt.date, dest: IO[bytes], *, account_code: str
) -> str:
    """Write the day's ``STL-yyyymmdd.*`` file to ``dest`` as it streams in; return its name.

    Raises ChannelUnavailable: ``REPORT_NOT_AVAILABLE`` (not published yet — the pull tries
    again), ``SFTP_HOST_KEY_MISMATCH``, ``SFTP_AUTH_FAILED``, ``SFTP_UNAVAILABLE``; and
    ChannelDeclined ``REPORT_SPLIT`` for a day PayPal split into several files.
    """
    where = f"{settings.username}@{settings.host}:{settings.port}"
    try:
        sock = socket.create_connection((settings.host, settings.port), timeout=TIMEOUT)
    except OSError as exc:
        raise ChannelUnavailable(
            f"PayPal SFTP {where} cannot be reached: {exc}", code="SFTP_UNAVAILABLE"
        ) from None
    transport = paramiko.Transport(sock)
    transport.banner_timeout = transport.auth_timeout = TIMEOUT
    try:
        try:
            transport.start_client(timeout=TIMEOUT)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise ChannelUnavailable(
                f"PayPal SFTP {where}: SSH handshake failed: {exc}", code="SFTP_UNAVAILABLE"
            ) from None
        _check_host_key(transport, settings, where, account_code)
        _authenticate(transport, settings, where)
        sftp = paramiko.SFTPClient.from_transport(transport)
        if sftp is None:
            raise ChannelUnavailable(
                f"PayPal SFTP {where}: no SFTP session", code="SFTP_UNAVAILABLE"
            )
        sftp.get_channel().settimeout(TIMEOUT)
        with sftp:
            name = _report_name(sftp, settings.directory, day, where)
            try:
                sftp.getfo(
                    f"{settings.directory}/{name}",
                    dest,
                    max_concurrent_prefetch_requests=PREFETCH_REQUESTS,
                )
            except FileNotFoundError:
                raise _not_published(day, settings.directory, where) from None
            return name
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise ChannelUnavailable(
            f"PayPal SFTP {where}: transfer failed: {exc}", code="SFTP_UNAVAILABLE"
        ) from None
    finally:
        transport.close()


def _check_host_key(
    transport: paramiko.Transport, settings: SftpSettings, where: str, account_code: str
) -> None:
    presented = fingerprint(transport.get_remote_server_key())
    if not hmac.compare_digest(presented, settings.host_key_fingerprint):
        raise ChannelUnavailable(
            f"PayPal SFTP {where} presented host key {presented}, not the pinned "
            f"{settings.host_key_fingerprint} of account {account_code!r}; refused",
            code="SFTP_HOST_KEY_MISMATCH",
        )


def _authenticate(transport: paramiko.Transport, settings: SftpSettings, where: str) -> None:
    try:
        if settings.private_key:
            transport.auth_publickey(settings.username, _load_key(settings.private_key, where))
        else:
            transport.auth_password(settings.username, settings.password)
    except paramiko.AuthenticationException:
        raise ChannelUnavailable(
            f"PayPal SFTP {where} refused the login (check sftp_username and "
            f"sftp_{'private_key' if settings.private_key else 'password'})",
            code="SFTP_AUTH_FAILED",
        ) from None
    if not transport.is_authenticated():
        raise ChannelUnavailable(f"PayPal SFTP {where} refused the login", code="SFTP_AUTH_FAILED")


def _load_key(text: str, where: str) -> paramiko.PKey:
    for key_class in _KEY_CLASSES:
        try:
            return key_class.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError):
            continue
    raise ChannelUnavailable(
        f"PayPal SFTP {where}: sftp_private_key is not an unencrypted RSA, ECDSA or Ed25519 key",
        code="CONFIGURATION",
    )


def _report_name(sftp: paramiko.SFTPClient, directory: str, day: dt.date, where: str) -> str:
    pattern = re.compile(rf"STL-{day:%Y%m%d}\.\d+\.\d+\.CSV", re.IGNORECASE)
    try:
        names = sorted(n for n in sftp.listdir(directory) if pattern.fullmatch(n))
    except FileNotFoundError:
        raise ChannelUnavailable(
            f"PayPal SFTP {where} has no directory {directory} (check sftp_directory)",
            code="CONFIGURATION",
        ) from None
    if not names:
        raise _not_published(day, directory, where)
    if len(names) > 1:
        raise ChannelDeclined(
            f"PayPal split the STL report of {day} into {', '.join(names)} at {where}; "
            "only single-file reports are read (ask PayPal for one file a day)",
            code="REPORT_SPLIT",
        )
    return names[0]


def _not_published(day: dt.date, directory: str, where: str) -> ChannelUnavailable:
    return ChannelUnavailable(
        f"no STL-{day:%Y%m%d} report in {directory} at PayPal SFTP {where} yet",
        code="REPORT_NOT_AVAILABLE",
    )

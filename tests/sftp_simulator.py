"""An SFTP server for tests: paramiko's server side serving one directory, read-only, on
127.0.0.1 at a random port, in a thread. It stands in for PayPal's reports.paypal.com."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import socket
import threading
from pathlib import Path

import paramiko
from paramiko.sftp import SFTP_NO_SUCH_FILE, SFTP_PERMISSION_DENIED


def fingerprint(key: paramiko.PKey) -> str:
    """``SHA256:…`` as ``ssh-keygen -lf`` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def private_key_text(key: paramiko.PKey) -> str:
    out = io.StringIO()
    key.write_private_key(out)
    return out.getvalue()


class _Auth(paramiko.ServerInterface):
    def __init__(self, sim: SftpSimulator):
        self.sim = sim

    def get_allowed_auths(self, username: str) -> str:
        return "password,publickey"

    def check_auth_password(self, username: str, password: str) -> int:
        self.sim.logins.append((username, "password"))
        if username == self.sim.username and password == self.sim.password:
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        self.sim.logins.append((username, "publickey"))
        if username == self.sim.username and key.asbytes() == self.sim.client_key.asbytes():
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class _Handle(paramiko.SFTPHandle):
    def stat(self):
        return paramiko.SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))


class _Files(paramiko.SFTPServerInterface):
    """Paths are relative to the simulator's root; nothing can be written."""

    def __init__(self, server, *args, sim: SftpSimulator, **kwargs):
        super().__init__(server, *args, **kwargs)
        self.sim = sim

    def _local(self, path: str) -> Path:
        local = (self.sim.root / path.lstrip("/")).resolve()
        if not local.is_relative_to(self.sim.root.resolve()):
            raise PermissionError(path)
        return local

    def _attrs(self, local: Path):
        attrs = paramiko.SFTPAttributes.from_stat(local.stat())
        attrs.filename = local.name
        return attrs

    def list_folder(self, path: str):
        try:
            local = self._local(path)
            return [self._attrs(child) for child in sorted(local.iterdir())]
        except FileNotFoundError:
            return SFTP_NO_SUCH_FILE
        except OSError:
            return SFTP_PERMISSION_DENIED

    def stat(self, path: str):
        try:
            return self._attrs(self._local(path))
        except FileNotFoundError:
            return SFTP_NO_SUCH_FILE
        except OSError:
            return SFTP_PERMISSION_DENIED

    lstat = stat

    def canonicalize(self, path: str) -> str:
        return "/" + os.path.normpath("/" + path).lstrip("/")

    def open(self, path: str, flags: int, attr):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC):
            return SFTP_PERMISSION_DENIED
        try:
            readfile = open(self._local(path), "rb")  # noqa: SIM115 - closed by the handle
        except FileNotFoundError:
            return SFTP_NO_SUCH_FILE
        except OSError:
            return SFTP_PERMISSION_DENIED
        handle = _Handle(flags)
        handle.filename, handle.readfile = path, readfile
        self.sim.opened.append(path)
        return handle

    def remove(self, path: str) -> int:
        return SFTP_PERMISSION_DENIED


class SftpSimulator:
    """``root`` is what the server serves; ``host_key`` its identity, ``client_key`` the key
    (besides ``username``/``password``) it lets in."""

    def __init__(self, root: Path, *, username: str = "cardex", password: str = "s3cret-pw"):
        self.root, self.username, self.password = root, username, password
        self.host_key = paramiko.ECDSAKey.generate()
        self.client_key = paramiko.ECDSAKey.generate()
        self.opened: list[str] = []  # paths read
        self.logins: list[tuple[str, str]] = []  # (username, method) of each login attempt
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self.host, self.port = self._sock.getsockname()
        self._sock.settimeout(0.1)
        self._stop = threading.Event()
        self._transports: list[paramiko.Transport] = []
        self._thread = threading.Thread(target=self._serve, name="sftp-simulator", daemon=True)
        self._thread.start()

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.host_key)

    def credentials(self, **overrides) -> dict:
        """The ``sftp_*`` credentials of a PayPal account that reaches this server."""
        return {
            "sftp_host": self.host,
            "sftp_port": self.port,
            "sftp_username": self.username,
            "sftp_password": self.password,
            "sftp_directory": "/ppreports/outgoing",
            "sftp_host_key_fingerprint": self.fingerprint,
            **overrides,
        }

    def publish(self, name: str, content: bytes) -> Path:
        path = self.root / "ppreports" / "outgoing" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return path

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _addr = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            transport = paramiko.Transport(conn)
            transport.add_server_key(self.host_key)
            transport.set_subsystem_handler("sftp", paramiko.SFTPServer, _Files, sim=self)
            self._transports.append(transport)
            try:
                transport.start_server(server=_Auth(self))
            except (paramiko.SSHException, EOFError, OSError):
                transport.close()

    def close(self) -> None:
        """Stop listening and drop every connection; the port then refuses connections."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()
        for transport in self._transports:
            transport.close()

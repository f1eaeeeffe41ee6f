"""A scratch PostgreSQL database for benchmarks, next to DATABASE_URL's."""

from __future__ import annotations

import os
import sys
from urllib.parse import urlparse

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/cardex"


def scratch_database(url: str, name: str) -> str:
    """Drop and create ``name`` on the server of ``url``; return its URL."""
    import psycopg

    parsed = urlparse(url)
    if not parsed.scheme.startswith("postgres"):
        sys.exit("this benchmark needs PostgreSQL: set DATABASE_URL=postgres://…")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return parsed._replace(path=f"/{name}").geturl()


def drop_database(url: str, name: str) -> None:
    import psycopg

    admin = urlparse(url)._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def use_scratch_database(name: str) -> tuple[str, str]:
    """Point Django at a fresh scratch database (before django.setup()); returns (base, scratch)."""
    base = os.environ.get("DATABASE_URL", DEFAULT_URL)
    scratch = scratch_database(base, name)
    os.environ["DATABASE_URL"] = scratch
    return base, scratch

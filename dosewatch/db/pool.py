"""Connections: one pool per process, and a start-up check that fails in one readable line."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from dosewatch.config import ConfigError

log = logging.getLogger(__name__)


def describe(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or "local socket"
    port = f":{parts.port}" if parts.port else ""
    return (
        f"{parts.scheme}://{parts.username + '@' if parts.username else ''}{host}{port}{parts.path}"
    )


def check_database(url: str, timeout_s: float = 5.0) -> None:
    """Raise :class:`ConfigError` saying what to fix if the database cannot be reached."""
    try:
        with psycopg.connect(url, connect_timeout=max(1, int(timeout_s))) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"cannot connect to PostgreSQL at {describe(url)} ({reason}); start it or fix "
            "DOSEWATCH_DATABASE_URL (unset it to use the embedded database)"
        ) from None


def make_pool(
    url: str, *, min_size: int = 1, max_size: int = 8, name: str = "dosewatch"
) -> ConnectionPool:
    pool: ConnectionPool = ConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        kwargs={"row_factory": dict_row},
        name=name,
        open=False,
    )
    pool.open(wait=True, timeout=15)
    return pool

"""Which real PostgreSQL and MQTT broker the tests use.

In order: ``DOSEWATCH_TEST_DATABASE_URL`` / ``DOSEWATCH_TEST_MQTT_URL`` when set; else the
machine's PostgreSQL on 127.0.0.1:5432 and Mosquitto on 127.0.0.1:1883 when they answer; else
the embedded ones (pgserver, amqtt), so the suite passes on a bare machine. Never a mock.
"""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from service.embedded import EmbeddedBroker, EmbeddedPostgres

LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/test"
LOCAL_MQTT = ("127.0.0.1", 1883)


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def postgres_server() -> Iterator[tuple[str, str]]:
    """Yield (admin URL, description)."""
    url = os.environ.get("DOSEWATCH_TEST_DATABASE_URL")
    if url:
        yield url, "DOSEWATCH_TEST_DATABASE_URL"
    elif _answers(LOCAL_PG):
        yield LOCAL_PG, "local PostgreSQL 127.0.0.1:5432"
    else:
        pg = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="dosewatch-test-pg-")))
        try:
            yield pg.start(), "embedded PostgreSQL (pgserver)"
        finally:
            pg.stop()


@contextmanager
def private_database(admin_url: str) -> Iterator[str]:
    """A fresh database for this test run, dropped afterwards."""
    name = f"dosewatch_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextmanager
def mqtt_server() -> Iterator[tuple[str, str]]:
    url = os.environ.get("DOSEWATCH_TEST_MQTT_URL")
    if url:
        yield url, "DOSEWATCH_TEST_MQTT_URL"
    elif _port_open(*LOCAL_MQTT):
        yield "mqtt://127.0.0.1:1883", "local broker 127.0.0.1:1883"
    else:
        broker = EmbeddedBroker()
        try:
            yield broker.start(), "embedded broker (amqtt)"
        finally:
            broker.stop()

"""Embedded servers for a newcomer: PostgreSQL from the ``pgserver`` wheel, a broker from ``amqtt``.

Used only when no URL is configured. PostgreSQL listens on a Unix socket inside its data folder
(kept between runs under the user's data directory), so it never collides with a server already
running; the broker binds a free loopback port. Both stop with the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from pathlib import Path
from typing import Any

import platformdirs

log = logging.getLogger(__name__)


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir("dosewatch", appauthor=False))


class EmbeddedPostgres:
    def __init__(self, pgdata: Path | None = None) -> None:
        self.pgdata = pgdata or data_dir() / "pgdata"
        self._server: Any = None

    def start(self) -> str:
        import pgserver  # imported late: only the embedded path needs it

        self.pgdata.mkdir(parents=True, exist_ok=True)
        self._server = pgserver.get_server(self.pgdata, cleanup_mode="stop")
        url: str = self._server.get_uri()
        log.info("embedded PostgreSQL running, data in %s", self.pgdata)
        return url

    def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._server.cleanup()
            self._server = None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class EmbeddedBroker:
    """amqtt on its own event loop in a daemon thread. Speaks MQTT 3.1.1 only: a demo broker."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host, self.port = host, port or free_port(host)
        self._loop = asyncio.new_event_loop()
        self._broker: Any = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="amqtt", daemon=True)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> str:
        from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        self._thread.start()

        async def _start() -> Any:
            broker = Broker(config, loop=self._loop)
            await broker.start()
            return broker

        self._broker = asyncio.run_coroutine_threadsafe(_start(), self._loop).result(timeout=30)
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        log.info("embedded MQTT broker (amqtt) on %s", self.url)
        return self.url

    def stop(self) -> None:
        if self._broker is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop).result(10)
            self._broker = None
        self._loop.call_soon_threadsafe(self._loop.stop)

"""Embedded servers for a newcomer: PostgreSQL from the ``pgserver`` wheel, a broker from ``amqtt``.

Used only when no URL is configured. PostgreSQL listens on a Unix socket inside its data folder
(kept between runs under the user's data directory), so it never collides with a server already
running; the broker binds a free loopback port. Both stop with the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import platformdirs

from dosewatch.config import ConfigError

log = logging.getLogger(__name__)

READY = b"ready"


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

    def fresh_database(self, url: str, name: str) -> str:
        """Drop and create the database ``name`` on this server; return its URL. The demo's
        own database: made anew at each start, beside whatever ``dosewatch run`` keeps."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(url, autocommit=True) as conn:
            ident = sql.Identifier(name)
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
        return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))

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
    """amqtt in a child process. Speaks MQTT 3.1.1 only: a demo broker, not a fleet's.

    A child process, not a thread: amqtt's own shutdown can hang while a client is connected,
    keeping the port. Ending the process closes every socket at once, and the child is told by
    the kernel to stop if this process dies first (``PR_SET_PDEATHSIG``).
    """

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host, self.port = host, port or free_port(host)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self, timeout_s: float = 20.0) -> str:
        # The child says "ready" on a pipe once it listens. Probing the port instead would be a
        # client that connects and sends nothing, which amqtt logs as an ERROR.
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "service.embedded", self.host, str(self.port)],
            stdout=subprocess.PIPE,
            preexec_fn=_die_with_parent,
            # Its own session: a Ctrl-C in the terminal reaches only dosewatch, which stops the
            # gateway first and then this broker, instead of both at once.
            start_new_session=True,
        )
        assert self._proc.stdout is not None
        ready, _, _ = select.select([self._proc.stdout], [], [], timeout_s)
        line = self._proc.stdout.readline() if ready else b""
        if line.strip() == READY:
            log.info("embedded MQTT broker (amqtt) on %s", self.url)
            return self.url
        self.stop()
        if ready:  # the pipe closed without "ready": the child failed and said why on stderr
            raise ConfigError(
                f"the embedded MQTT broker could not start on port {self.port}; "
                "is the port free? (or set DOSEWATCH_MQTT_URL)"
            )
        raise ConfigError(f"the embedded MQTT broker did not listen on {self.url} in time")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc is not None and self._proc.stdout is not None:
            self._proc.stdout.close()
        self._proc = None


def _die_with_parent() -> None:
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _serve_broker(host: str, port: int) -> None:
    """The child: serve until SIGTERM, then exit at once.

    amqtt's own logging stays at WARNING: a client that drops its connection without a
    DISCONNECT is routine for a broker, but amqtt reports some such cases as ERROR. Stopping
    is ``os._exit``: the broker keeps nothing on disk, and amqtt's shutdown logs the
    cancellation of its own tasks as an error with a traceback.
    """
    from amqtt.broker import Broker
    from amqtt.errors import AMQTTError

    logging.basicConfig(level=logging.WARNING, format="amqtt: %(levelname)s %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the broker stops
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }

    async def main() -> None:
        broker = Broker(config)
        try:
            await broker.start()
        except (AMQTTError, OSError) as exc:
            print(f"amqtt: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
            os._exit(1)
        sys.stdout.buffer.write(READY + b"\n")
        sys.stdout.flush()
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        logging.shutdown()
        os._exit(0)

    asyncio.run(main())


if __name__ == "__main__":
    _serve_broker(sys.argv[1], int(sys.argv[2]))

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
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import platformdirs

from dosewatch.config import ConfigError

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

    @property
    def _address(self) -> tuple[str, int]:
        return self.host, self.port

    def start(self, timeout_s: float = 20.0) -> str:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "dosewatch.embedded", self.host, str(self.port)],
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ConfigError(
                    f"the embedded MQTT broker exited with status {self._proc.returncode}; "
                    f"is port {self.port} free? (or set DOSEWATCH_MQTT_URL)"
                )
            with contextlib.suppress(OSError), socket.create_connection(self._address, 0.2):
                log.info("embedded MQTT broker (amqtt) on %s", self.url)
                return self.url
            time.sleep(0.05)
        self.stop()
        raise ConfigError(f"the embedded MQTT broker did not listen on {self.url} in time")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None


def _die_with_parent() -> None:
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _serve_broker(host: str, port: int) -> None:
    from amqtt.broker import Broker

    logging.basicConfig(level=logging.WARNING, format="amqtt: %(levelname)s %(message)s")
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }

    async def main() -> None:
        broker = Broker(config)
        await broker.start()
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()

    asyncio.run(main())


if __name__ == "__main__":
    _serve_broker(sys.argv[1], int(sys.argv[2]))

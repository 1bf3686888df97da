"""A plain Mosquitto of a test's own on a spare port, for tests that must not share the broker
with other test runs (counters, load spreading, memory)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dispenser_sim.broker import mosquitto_binary
from service.embedded import free_port


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


@contextmanager
def own_mosquitto() -> Iterator[str]:
    """Yield ``mqtt://127.0.0.1:<port>`` of a fresh anonymous Mosquitto (skip if none).

    It never drops queued QoS 1 messages for a subscriber that falls behind (stock Mosquitto
    drops beyond 1,000, and only its log says so), like deploy/mosquitto does for the gateway.
    """
    from tests.conftest import wait_for

    binary = mosquitto_binary()
    if binary is None:
        pytest.skip("the mosquitto binary is not installed")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="dosewatch-mosquitto-"))
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
        "persistence false\n"
    )
    proc = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _listening(port), what="mosquitto to listen")
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)

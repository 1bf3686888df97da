"""The newcomer's first screen: ``dosewatch demo`` on a fresh HOME logs no ERROR, no traceback.

It runs the README's command as a newcomer would, with nothing configured (a fresh HOME, no
``DOSEWATCH_*`` variable) except the HTTP port, because other test runs on this machine may hold
8000. It reads the output until the first dose has been taken (about a minute after start), the
missed-dose alarm has opened, the Umeå fleet's 30 days of history are done and the fleet is
live, then presses Ctrl-C (SIGINT to the process group, as a terminal does) and reads the
shutdown too. How soon the alarm opens is printed by the demo itself (seconds after start) and
shown here, not asserted: speed figures are not test assertions.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.embedded import free_port

ERROR_LINE = re.compile(r"\b(ERROR|CRITICAL)\b|Traceback")


@pytest.fixture
def fresh_home() -> Iterator[Path]:
    """Not pytest's tmp_path: run as root, pgserver runs PostgreSQL as its own user and opens
    the folders above the data for it, and a concurrent pytest session closes its tmp root
    again (0700), so stopping the server would fail for a reason no newcomer has."""
    home = Path(tempfile.mkdtemp(prefix="dosewatch-demo-home-"))
    yield home
    shutil.rmtree(home, ignore_errors=True)


def test_demo_on_a_fresh_home_prints_no_error(fresh_home: Path) -> None:
    tmp_path = fresh_home
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOSEWATCH_", "XDG_"))}
    env.update(HOME=str(tmp_path), DOSEWATCH_HTTP_PORT=str(free_port()))
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "demo"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, for the Ctrl-C below
    )
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []
    reader = threading.Thread(target=lambda: [lines.put(ln) for ln in proc.stdout or ()])
    reader.start()

    def read_until(done: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                seen.append(lines.get(timeout=0.5))
            except queue.Empty:
                if proc.poll() is not None and not reader.is_alive():
                    return False
                continue
            if done in seen[-1]:
                return True
        return False

    try:
        assert read_until("API token:", 120), "".join(seen)
        # The first dose is due at the next whole minute; a patient takes it 5 s later.
        assert read_until(": dose_taken", 150), "".join(seen)
        # Generous waits: the machine running the tests may be busy with other suites. The
        # alarm's line and the fleet's going live come in either order.
        deadline = time.monotonic() + 900
        wanted = ("Missed-dose alarm", "Live: the umea fleet")
        while not all(any(w in ln for ln in seen) for w in wanted):
            assert time.monotonic() < deadline, "".join(seen)
            if not read_until("\n", 5):  # no line for 5 s: fine while the demo runs
                assert proc.poll() is None, "".join(seen)
        print(*(ln for ln in seen if "Missed-dose alarm" in ln or "History done" in ln))
        read_until("no such line", 20)  # a few live ticks and sweeps
        read_until("no such line", 10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        reader.join(timeout=10)
    while not lines.empty():
        seen.append(lines.get())
    output = "".join(seen)
    assert "embedded MQTT broker" in output and "Sign in at" in output, output
    assert "demo-manager" in output and "History done" in output, output
    bad = [line for line in seen if ERROR_LINE.search(line)]
    assert bad == [], output
    assert proc.returncode == 0, output

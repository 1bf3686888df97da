"""A Mosquitto with the project's production configuration, for tests and benchmarks.

``deploy/mosquitto/mosquitto.conf`` and ``deploy/mosquitto/acl`` are used as they are; only
what must differ on a test machine is rewritten: the listener (a spare loopback port instead of
1883), and the paths of the persistence folder, the password file and the ACL (a temporary
folder instead of the container's volumes). Everything that matters (never drop queued
messages, authentication required, the topic ACL) is the shipped configuration.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

from dosewatch.broker_credentials import hash_password


def _free_port() -> int:
    with socket.socket() as s:  # the OS picks a free port; the broker binds it right after
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto"


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )


def project_config(workdir: Path, port: int) -> str:
    """The deploy configuration, rewritten for ``workdir`` and ``port`` (see the docstring)."""
    text = (DEPLOY / "mosquitto.conf").read_text(encoding="utf-8")
    replacements = {
        r"^persistence_location .*$": f"persistence_location {workdir / 'data'}/",
        r"^password_file .*$": f"password_file {workdir / 'passwords'}",
        r"^acl_file .*$": f"acl_file {workdir / 'acl'}",
        r"^listener 1883$": f"listener {port} 127.0.0.1",
        r"^log_dest stdout$": f"log_dest file {workdir / 'mosquitto.log'}",
    }
    for pattern, value in replacements.items():
        text, n = re.subn(pattern, value, text, flags=re.MULTILINE)
        if n != 1:
            raise RuntimeError(f"deploy/mosquitto/mosquitto.conf: expected one {pattern!r}")
    if os.geteuid() == 0:
        # Started as root, Mosquitto switches to the `mosquitto` user, which cannot read a
        # temporary folder of root's. Not an issue in the container (it starts as mosquitto).
        text += "\nuser root\n"
    return text


class ProjectBroker:
    """``mosquitto -c <project config>`` on a spare port, with the given users."""

    def __init__(self, workdir: Path, users: dict[str, str], port: int | None = None) -> None:
        self.workdir, self.users = workdir, users
        self.port = port or _free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    def url(self, user: str) -> str:
        return f"mqtt://{user}:{self.users[user]}@127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 15.0) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise FileNotFoundError("mosquitto")
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        pw = self.workdir / "passwords"
        if not pw.exists():  # one write for a whole fleet (set_user rewrites the file each time)
            lines = [f"{u}:{hash_password(p)}" for u, p in self.users.items()]
            pw.write_text("\n".join(lines) + "\n", encoding="utf-8")
            pw.chmod(0o600)
        shutil.copyfile(DEPLOY / "acl", self.workdir / "acl")
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(project_config(self.workdir, self.port), encoding="utf-8")
        self._proc = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                raise RuntimeError(f"mosquitto exited ({self._proc.returncode}): {err}{self.log()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on {self.port}: {self.log()}")

    def stop(self) -> None:
        """A clean stop (SIGTERM): Mosquitto saves its persistence file on the way down."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def log(self) -> str:
        path = self.workdir / "mosquitto.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def __enter__(self) -> ProjectBroker:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

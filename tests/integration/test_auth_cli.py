"""``dosewatch user create``, ``dosewatch token create`` and the demo's sign-in lines, as a
user runs them, against the test database."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from dashboards.app import create_app
from dosewatch.clock import FakeClock
from service import demo
from tests.auth_helpers import sign_in, team


def dosewatch(database_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env={**os.environ, "DOSEWATCH_DATABASE_URL": database_url},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_first_admin_then_a_nurse_sign_in(
    pool: ConnectionPool, clock: FakeClock, database_url: str
) -> None:
    made = dosewatch(
        database_url,
        "user", "create", "--username", "Ada", "--name", "Ada Admin", "--role", "admin",
        "--password-stdin",
        stdin="a long admin password\n",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    team(pool, "Norr natt")
    made = dosewatch(
        database_url,
        "user", "create", "--username", "eva", "--name", "Eva", "--role", "nurse",
        "--team", "Norr natt", "--language", "en", "--password-stdin",
        stdin="eva's long password\n",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    with TestClient(create_app(pool, clock), base_url="https://testserver") as browser:
        sign_in(browser, "ada", "a long admin password")
        assert browser.get("/auth/me").json()["role"] == "admin"
        sign_in(browser, "eva", "eva's long password")
        me = browser.get("/auth/me").json()
        assert (me["role"], me["language"], me["name"]) == ("nurse", "en", "Eva")


@pytest.mark.parametrize(
    ("args", "stdin", "words"),
    [
        (["--role", "nurse"], "long enough pw\n", "team"),
        (["--role", "boss"], "long enough pw\n", "role"),
        (["--role", "nurse", "--team", "Nowhere"], "long enough pw\n", "no team"),
        (["--role", "admin"], "short\n", "at least 8"),
        (["--role", "admin", "--language", "de"], "long enough pw\n", "--language"),
    ],
)
def test_user_create_mistakes_are_one_line(
    pool: ConnectionPool, database_url: str, args: list[str], stdin: str, words: str
) -> None:
    base = ["user", "create", "--username", "x.y", "--name", "X", "--password-stdin"]
    result = dosewatch(database_url, *base, *args, stdin=stdin)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("dosewatch:")]
    assert len(lines) == 1 and words in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_token_create_prints_only_the_token(
    pool: ConnectionPool, clock: FakeClock, database_url: str
) -> None:
    team_id = team(pool, "Söder")
    result = dosewatch(
        database_url, "token", "create", "--name", "sim", "--role", "nurse", "--team", str(team_id)
    )
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert result.stdout == token + "\n" and token.startswith("dw_") and len(token) > 40
    with pool.connection() as conn:
        stored = conn.execute("SELECT token_hash, role, team_id FROM api_tokens").fetchone()
    assert stored is not None and token not in str(stored)  # only a hash is kept
    assert (stored["role"], stored["team_id"]) == ("nurse", team_id)  # type: ignore[call-overload]
    with TestClient(create_app(pool, clock)) as client:
        me = client.get("/auth/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert (me["username"], me["role"], me["team_id"]) == ("sim", "nurse", team_id)
    bad = dosewatch(database_url, "token", "create", "--name", "x", "--role", "pharmacist")
    assert bad.returncode == 2 and bad.stdout == ""


def test_the_demo_prints_working_sign_ins_and_an_admin_token(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    def lines() -> list[str]:
        with pool.connection() as conn, conn.transaction():
            demo.set_up(conn, clock.now(), "Europe/Stockholm", timedelta(hours=48))
            return demo.sign_in(conn, clock.now())

    first, again = lines(), lines()  # a second start resets the passwords, keeps the users
    assert first != again
    [token_line] = [line for line in again if line.startswith("API token: ")]
    creds: dict[str, Any] = {}
    for line in again:
        if line.startswith("Sign in as "):
            words = line.split()
            creds[words[3]] = words[5]
    assert set(creds) == {"demo-admin", "demo-nurse", "demo-pharmacist", "demo-manager"}
    with TestClient(create_app(pool, clock), base_url="https://testserver") as browser:
        for username, password in creds.items():
            sign_in(browser, username, password)
        sign_in(browser, "demo-nurse", creds["demo-nurse"])
        # The nurse sees the demo patients: they are in her team.
        assert browser.get("/api/v1/dispensers/DEMO-003").status_code == 200
        token = token_line.removeprefix("API token: ")
        me = browser.get("/auth/me", headers={"Authorization": f"Bearer {token}"}).json()
        assert me["role"] == "admin"

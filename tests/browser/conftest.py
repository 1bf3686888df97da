"""Browser tests: the real app under uvicorn on a free port, against the test database, driven
by Playwright in headless Chromium from Debian's ``chromium`` package (``/usr/bin/chromium``;
Playwright's own browser download is not used). Screenshots go to test-output/screenshots/.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from dosewatch.clock import FakeClock

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
PASSWORD = "correct horse battery staple"

if not CHROMIUM.exists() and shutil.which("chromium") is None:
    pytest.skip(
        "browser tests need Debian's chromium at /usr/bin/chromium (apt-get install chromium;"
        " .ci/run installs it)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="browser tests need playwright: pip install -e '.[test]'"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def web(pool: ConnectionPool, clock: FakeClock) -> Iterator[str]:
    """The real app (create_app) served by uvicorn in a thread; yields its base URL."""
    import uvicorn

    from dashboards.app import create_app

    app = create_app(pool, clock)
    port = _free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")),
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
        )
        yield b
        b.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    contexts: list[Any] = []

    def make(locale: str = "en-GB") -> Any:
        ctx = browser.new_context(
            viewport={"width": 1440, "height": 900}, timezone_id="Europe/Stockholm", locale=locale
        )
        contexts.append(ctx)
        return ctx.new_page()

    yield make
    for ctx in contexts:
        ctx.close()


def add_team(pool: ConnectionPool, name: str, now: datetime) -> int:
    with pool.connection() as conn:
        row = conn.execute(
            "INSERT INTO teams (name, created_at) VALUES (%s, %s) RETURNING id", (name, now)
        ).fetchone()
    assert row is not None
    return int(row["id"])  # type: ignore[call-overload]


def add_user(
    pool: ConnectionPool,
    username: str,
    role: str,
    team_id: int | None,
    language: str,
    now: datetime,
    name: str | None = None,
) -> None:
    """Through the sign-in module's own SQL (dosewatch/db/users.py)."""
    from dosewatch.db import users

    with pool.connection() as conn, conn.transaction():
        users.create_user(
            conn,
            username=username,
            name=name or username.title(),
            role=role,
            team_id=team_id,
            language=language,
            password=PASSWORD,
            now=now,
        )


def sign_in(page: Any, base: str, username: str, next_path: str = "/") -> None:
    page.goto(f"{base}/login?next={next_path}")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path

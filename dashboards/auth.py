"""Who is asking: browser sessions, API tokens, CSRF, and role checks.

:class:`AuthMiddleware` runs before routing. It resolves the caller from ``Authorization:
Bearer <token>`` (machine clients) or the ``dw_session`` cookie (browsers) and puts a
:class:`Principal` on ``request.state.principal``. Then:

- every ``/api/v1/*`` request without one gets 401 (``/api/v1/health`` stays open for
  monitors), so a route added later cannot forget it;
- a state-changing request (POST, PUT, PATCH, DELETE) authenticated by the cookie must carry
  ``X-CSRF-Token`` equal to its session's token, else 403. Bearer requests need none: a
  browser never attaches that header by itself. ``/auth/login`` and the signature-checked
  ``/twilio/`` webhooks are exempt;
- the session's expiry slides: 12 hours from the last request, cookies refreshed.

Routes then take ``Depends(current_principal)`` or ``Depends(require_roles(...))``.
``DOSEWATCH_COOKIE_SECURE`` is ``auto`` (Secure unless the request is plain http to localhost),
``true`` or ``false``.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from http.cookies import CookieError, SimpleCookie
from typing import Any, Literal

import anyio.to_thread
from fastapi import FastAPI, HTTPException, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dosewatch.config import ConfigError
from dosewatch.db import users as user_sql

SESSION_COOKIE = "dw_session"
CSRF_COOKIE = "dw_csrf"
CSRF_HEADER = "x-csrf-token"
SESSION_TTL = timedelta(hours=12)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
OPEN_API_PATHS = frozenset({"/api/v1/health"})
# Outside /api/v1, but answering 401 to a caller who is not signed in.
SIGNED_IN_PATHS = frozenset({"/auth/me", "/auth/logout"})
CSRF_EXEMPT = ("/auth/login", "/twilio/")
# Signed by Twilio (checked there), or public files: no caller is looked up.
UNGUARDED = ("/twilio/", "/static/")
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


@dataclass(frozen=True)
class Principal:
    """The caller: a signed-in user or an API token."""

    kind: Literal["user", "token"]
    id: int
    name: str
    role: str
    team_id: int | None
    language: str
    username: str = ""

    @property
    def team_scope(self) -> int | None:
        """The one team this caller may see, or ``None`` for all (managers and admins)."""
        return None if self.role in user_sql.ALL_TEAMS_ROLES else self.team_id

    @property
    def actor(self) -> str:
        """The name the audit log files this caller under."""
        return self.username if self.kind == "user" else f"token:{self.name}"


def _unauthorized() -> HTTPException:
    return HTTPException(
        401, "sign in first (or send Authorization: Bearer <token>)", {"WWW-Authenticate": "Bearer"}
    )


def current_principal(request: Request) -> Principal:
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):
        raise _unauthorized()
    return principal


def require_roles(*roles: str) -> Callable[[Request], Principal]:
    """A dependency: the caller, who must have one of ``roles`` (403 otherwise)."""
    allowed = frozenset(roles)

    def check(request: Request) -> Principal:
        principal = current_principal(request)
        if principal.role not in allowed:
            raise HTTPException(403, f"the {principal.role} role may not do this")
        return principal

    check.roles = allowed  # type: ignore[attr-defined]  # read by dashboards.answers
    return check


def cookie_secure_setting(value: str | None = None) -> str:
    """``DOSEWATCH_COOKIE_SECURE``: auto, true or false (a mistake is a :class:`ConfigError`)."""
    raw = value if value is not None else os.environ.get("DOSEWATCH_COOKIE_SECURE", "auto")
    setting = raw.strip().lower() or "auto"
    setting = {"1": "true", "yes": "true", "0": "false", "no": "false"}.get(setting, setting)
    if setting not in ("auto", "true", "false"):
        raise ConfigError(f"DOSEWATCH_COOKIE_SECURE: must be auto, true or false, not {raw!r}")
    return setting


def cookies_secure(setting: str, scheme: str, host: str) -> bool:
    if setting != "auto":
        return setting == "true"
    hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return not (scheme in ("http", "ws") and hostname.lower() in LOCAL_HOSTS)


def session_cookies(session_id: str, csrf: str, secure: bool, max_age: int) -> list[str]:
    """``Set-Cookie`` values for the session and its CSRF token (max_age 0 deletes them). The
    values are URL-safe base64, so they need no quoting."""

    def cookie(name: str, value: str, same_site: str, http_only: bool) -> str:
        flags = [f"{name}={value}", "Path=/", f"Max-Age={max_age}", f"SameSite={same_site}"]
        return "; ".join(
            flags + (["HttpOnly"] if http_only else []) + (["Secure"] if secure else [])
        )

    return [
        cookie(SESSION_COOKIE, session_id, "Lax", True),
        cookie(CSRF_COOKIE, csrf, "Strict", False),
    ]


@dataclass
class _Resolved:
    principal: Principal | None = None
    csrf: str | None = None
    session_id: str | None = None  # set when the cookie authenticated the request


def _resolve(app: Any, headers: dict[str, str], cookies: dict[str, str]) -> _Resolved:
    pool, now = app.state.pool, app.state.clock.now()
    auth = headers.get("authorization", "")
    scheme, _, credential = auth.partition(" ")
    if scheme.lower() == "bearer" and credential.strip():
        with pool.connection() as conn:
            row = user_sql.token_principal(conn, credential.strip(), now)
        if row is None:
            return _Resolved()
        principal = Principal(
            "token", row["id"], row["name"], row["role"], row["team_id"], "en", row["name"]
        )
        return _Resolved(principal)
    session_id = cookies.get(SESSION_COOKIE)
    if not session_id:
        return _Resolved()
    with pool.connection() as conn:
        row = user_sql.touch_session(conn, session_id, now, SESSION_TTL)
    if row is None:
        return _Resolved()
    principal = Principal(
        "user", row["id"], row["name"], row["role"], row["team_id"], row["language"],
        row["username"],
    )  # fmt: skip
    return _Resolved(principal, row["csrf_token"], session_id)


async def _json(send: Send, status: int, detail: str, extra: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + extra})
    await send({"type": "http.response.body", "body": body})


class AuthMiddleware:
    """See the module docstring."""

    def __init__(self, app: ASGIApp, cookie_secure: str = "auto") -> None:
        self.app = app
        self.cookie_secure = cookie_secure_setting(cookie_secure)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"].startswith(UNGUARDED):
            await self.app(scope, receive, send)
            return
        request = Request(scope) if scope["type"] == "http" else None
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        cookies = request.cookies if request else _cookies(headers.get("cookie", ""))
        resolved = await anyio.to_thread.run_sync(_resolve, scope["app"], headers, cookies)
        state = scope.setdefault("state", {})
        state.update(
            principal=resolved.principal, csrf_token=resolved.csrf, session_id=resolved.session_id
        )
        path, method = scope["path"], scope.get("method", "GET")
        if resolved.principal is None and protected(path):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 4401})
                return
            await _json(send, 401, _unauthorized().detail, [(b"www-authenticate", b"Bearer")])
            return
        if resolved.session_id is None or scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        if method in UNSAFE_METHODS and not path.startswith(CSRF_EXEMPT):
            sent, expected = headers.get(CSRF_HEADER, "").encode(), (resolved.csrf or "").encode()
            if not (expected and secrets.compare_digest(sent, expected)):
                await _json(send, 403, "missing or invalid CSRF token (X-CSRF-Token)", [])
                return
        await self.app(scope, receive, self._sliding(send, resolved, headers, scope))

    def _sliding(
        self, send: Send, resolved: _Resolved, headers: dict[str, str], scope: Scope
    ) -> Send:
        """Refresh both cookies' lifetime on the way out, unless the route set them itself."""
        host = headers.get("host", "")
        secure = cookies_secure(self.cookie_secure, scope.get("scheme", "http"), host)
        assert resolved.session_id is not None and resolved.csrf is not None
        values = session_cookies(
            resolved.session_id, resolved.csrf, secure, int(SESSION_TTL.total_seconds())
        )

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = list(message.get("headers", []))
                if not any(
                    k.lower() == b"set-cookie" and v.startswith(SESSION_COOKIE.encode())
                    for k, v in out
                ):
                    out += [(b"set-cookie", v.encode("latin-1")) for v in values]
                message = {**message, "headers": out}
            await send(message)

        return wrapped


def install(app: FastAPI, cookie_secure: str | None = None) -> None:
    """Put :class:`AuthMiddleware` in front of ``app``; ``cookie_secure`` defaults to
    ``DOSEWATCH_COOKIE_SECURE`` (a bad value raises :class:`ConfigError`)."""
    setting = cookie_secure_setting(cookie_secure)
    app.state.cookie_secure = setting
    app.add_middleware(AuthMiddleware, cookie_secure=setting)


def protected(path: str) -> bool:
    """Whether the middleware answers 401 on ``path`` to a caller who is not signed in."""
    if path.startswith("/fhir/"):  # the dose record: every resource but the capability list
        return path.rstrip("/") != "/fhir/R4/metadata"
    return path.startswith("/api/v1/") and path.rstrip("/") not in OPEN_API_PATHS


def _cookies(header: str) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:  # a malformed Cookie header authenticates nobody
        return {}
    return {k: m.value for k, m in jar.items()}

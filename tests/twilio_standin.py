"""A local stand-in for the part of Twilio's REST API that dosewatch uses.

The real ``twilio`` client talks to it over HTTP (``TwilioNotifier(..., api_url=standin.url)``)
and it checks what Twilio checks: HTTP Basic auth with the account sid and auth token, the
account in the path, form-encoded ``To``/``From``/``Body`` (SMS) or ``Url`` (call), E.164
numbers, absolute callback URLs. It answers in Twilio's JSON shapes, so the client parses its
answers and errors exactly as it would Twilio's.

Usage::

    with TwilioStandIn(clock=fake_clock.now) as standin:
        notifier = TwilioNotifier(standin.account_sid, standin.auth_token, FROM, PUBLIC,
                                  api_url=standin.url)
        ...
        assert standin.sms[0]["To"] == "+46701111111"

- ``sms`` / ``calls``: every *accepted* create, in order: the form fields (a field sent more
  than once, like ``StatusCallbackEvent``, is a list) plus ``sid``.
- ``requests``: every request, accepted or not: ``method``, ``path``, ``query``, ``form``,
  ``status`` (what was answered).
- ``invalid_numbers``: numbers refused with 400 / code 21211, as Twilio refuses a number that
  is well-formed but not a phone.
- ``fail_next(status, times=1)``: the next create(s) answer ``status`` (429, 500, 503...).
- ``drop_next(times=1)``: the next create(s) get the connection closed with no answer.

The stand-in pretends the provider sends at once: a create answers ``queued`` (as Twilio does)
and a later list shows the message as ``sent`` with ``date_sent`` (a call with ``start_time``)
at the create time, read from ``clock`` so that tests on a fake clock can reconcile.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
API = "/2010-04-01/Accounts/"
Record = dict[str, Any]

# Twilio's error codes for the checks made here (https://www.twilio.com/docs/api/errors).
_TEXT = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    21201: "No 'To' number is specified",
    21205: "Url is not a valid URL",
    21211: "The 'To' number {to} is not a valid phone number.",
    21212: "The 'From' number {frm} is not a valid phone number, shortcode, or alphanumeric"
    " sender ID.",
    21213: "No 'From' number is specified",
    21602: "Message body is required.",
    21609: "Invalid StatusCallback url",
    21617: "The concatenated message body exceeds the 1600 character limit.",
}


class _Fail(Exception):
    def __init__(self, status: int, code: int, **fmt: str) -> None:
        self.status, self.code = status, code
        self.message = _TEXT.get(code, "Error").format(**fmt)


def _absolute(url: str | None) -> bool:
    parts = urlsplit(url or "")
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _rfc2822(at: datetime | None) -> str | None:
    return None if at is None else format_datetime(at.astimezone(UTC))


def _after(value: str) -> datetime:
    """Twilio accepts a date (YYYY-MM-DD, GMT) or a datetime (YYYY-MM-DDTHH:MM:SSZ)."""
    if "T" not in value:
        return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class TwilioStandIn:
    def __init__(
        self,
        account_sid: str | None = None,
        auth_token: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        latency_s: float = 0.0,
    ) -> None:
        self.latency_s = latency_s  # per create, after it is recorded: a window for SIGKILL
        self.account_sid = account_sid or "AC" + secrets.token_hex(16)
        self.auth_token = auth_token or secrets.token_hex(16)
        self.clock = clock
        self.sms: list[Record] = []
        self.calls: list[Record] = []
        self.requests: list[Record] = []
        self.invalid_numbers: set[str] = set()
        self._faults: list[int | None] = []  # status to answer, or None to drop the connection
        self._created: dict[str, datetime] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        # A short poll interval: shutdown() waits up to one interval, once per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> TwilioStandIn:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def created_at(self, sid: str) -> datetime:
        """When (on the stand-in's clock) the message or call with this sid was created."""
        with self._lock:
            return self._created[sid]

    def fail_next(self, status: int, times: int = 1) -> None:
        with self._lock:
            self._faults.extend([status] * times)

    def drop_next(self, times: int = 1) -> None:
        with self._lock:
            self._faults.extend([None] * times)

    def reset(self) -> None:
        with self._lock:
            self.sms.clear()
            self.calls.clear()
            self.requests.clear()
            self.invalid_numbers.clear()
            self._faults.clear()
            self._created.clear()

    # --- the API -------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: str, auth: str | None, body: bytes) -> Any:
        """Answer one request: ``(status, json)``, or ``None`` to drop the connection."""
        try:
            return self._handle(method, path, query, auth, body)
        finally:
            if method == "POST" and self.latency_s:
                time.sleep(self.latency_s)  # Twilio has the message; the client waits

    def _handle(self, method: str, path: str, query: str, auth: str | None, body: bytes) -> Any:
        form = {k: v[0] if len(v) == 1 else v for k, v in parse_qs(body.decode()).items()}
        with self._lock:
            seen: Record = {"method": method, "path": path, "query": query, "form": form}
            self.requests.append(seen)
            try:
                status, answer = self._route(method, path, query, auth, form)
            except _Fail as f:
                status = f.status
                answer = {
                    "code": f.code,
                    "message": f.message,
                    "more_info": f"https://www.twilio.com/docs/errors/{f.code}",
                    "status": f.status,
                }
            seen["status"] = status
            return None if status == 0 else (status, answer)

    def _route(
        self, method: str, path: str, query: str, auth: str | None, form: Record
    ) -> tuple[int, Any]:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if auth != f"Basic {expected}":
            raise _Fail(401, 20003)
        match = re.fullmatch(rf"{API}([^/]+)/(Messages|Calls)\.json", path)
        if match is None or match.group(1) != self.account_sid:
            raise _Fail(404, 20404)
        kind = match.group(2)
        if method == "GET":
            return 200, self._list(kind, path, parse_qs(query))
        if method != "POST":
            raise _Fail(405, 20404)
        if self._faults:
            fault = self._faults.pop(0)
            if fault is None:
                return 0, None
            raise _Fail(fault, 20429 if fault == 429 else 20500)
        return 201, self._create(kind, form)

    def _create(self, kind: str, form: Record) -> Record:
        to, frm = form.get("To"), form.get("From")
        if not to:
            raise _Fail(400, 21201)
        if not frm:
            raise _Fail(400, 21213)
        if not isinstance(to, str) or not E164.match(to) or to in self.invalid_numbers:
            raise _Fail(400, 21211, to=str(to))
        if not isinstance(frm, str) or not E164.match(frm):
            raise _Fail(400, 21212, frm=str(frm))
        if "StatusCallback" in form and not _absolute(form["StatusCallback"]):
            raise _Fail(400, 21609)
        now = self.clock()
        if kind == "Messages":
            if not form.get("Body"):
                raise _Fail(400, 21602)
            if len(form["Body"]) > 1600:
                raise _Fail(400, 21617)
            sid = "SM" + secrets.token_hex(16)
            self.sms.append({**form, "sid": sid})
        else:
            if not _absolute(form.get("Url")):
                raise _Fail(400, 21205)
            sid = "CA" + secrets.token_hex(16)
            self.calls.append({**form, "sid": sid})
        self._created[sid] = now
        return self._resource(kind, {**form, "sid": sid}, listed=False)

    def _resource(self, kind: str, rec: Record, listed: bool) -> Record:
        """One message or call in Twilio's JSON shape."""
        created = _rfc2822(self._created[rec["sid"]])
        common = {
            "sid": rec["sid"],
            "account_sid": self.account_sid,
            "to": rec["To"],
            "from": rec["From"],
            "api_version": "2010-04-01",
            "direction": "outbound-api",
            "date_created": created,
            "date_updated": created,
            "price": None,
            "price_unit": "USD",
            "uri": f"{API}{self.account_sid}/{kind}/{rec['sid']}.json",
        }
        if kind == "Messages":
            return {
                **common,
                "body": rec["Body"],
                "status": "sent" if listed else "queued",
                "date_sent": created if listed else None,
                "num_segments": "1",
                "num_media": "0",
                "error_code": None,
                "error_message": None,
                "messaging_service_sid": None,
            }
        return {
            **common,
            "status": "completed" if listed else "queued",
            "start_time": created if listed else None,
            "end_time": None,
            "duration": None,
            "answered_by": None,
            "parent_call_sid": None,
        }

    def _list(self, kind: str, path: str, q: dict[str, list[str]]) -> Record:
        records = self.sms if kind == "Messages" else self.calls
        after_key = "DateSent>" if kind == "Messages" else "StartTime>"
        items = []
        for rec in reversed(records):  # Twilio lists the newest first
            if "To" in q and rec["To"] != q["To"][0]:
                continue
            if "From" in q and rec["From"] != q["From"][0]:
                continue
            if after_key in q and self._created[rec["sid"]] < _after(q[after_key][0]):
                continue
            items.append(self._resource(kind, rec, listed=True))
        size = int(q.get("PageSize", ["50"])[0])
        # One page holds everything asked for: find_sent's look-ups are small, and the client
        # stops when next_page_uri is null.
        return {
            kind.lower(): items,
            "page": 0,
            "page_size": size,
            "start": 0,
            "end": max(len(items) - 1, 0),
            "uri": path,
            "first_page_uri": path,
            "next_page_uri": None,
            "previous_page_uri": None,
        }


def _handler_for(standin: TwilioStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            answer = standin.handle(
                self.command, parts.path, parts.query, self.headers.get("Authorization"), body
            )
            if answer is None:  # a network failure: close without a word
                self.close_connection = True
                self.connection.close()
                return
            status, payload = answer
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = _serve
        do_POST = _serve
        do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
            pass  # keep the test output quiet; ``requests`` has every request

    return Handler

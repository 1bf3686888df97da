"""Signed webhooks end to end: a real HTTP receiver on loopback checks every signature.

The alarm's life is driven through the service (sweep, the API's acknowledge and resolve); the
jobs run on a fake clock, so a receiver that is down gets its events when the backoff says,
without waiting in real time.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from alarms.fanout import fan_out
from alarms.missed import sweep_missed_doses
from alarms.webhooks import WebhookDispatcher
from dashboards.app import create_app
from dosewatch.clock import FakeClock
from dosewatch.domain import webhooks
from tests.auth_helpers import bearer, team
from tests.helpers import add_dispenser


class Receiver:
    """A webhook receiver as the docs describe it: verify, then dedupe on the event id."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock, self.secret = clock, ""
        self.accepted: list[dict[str, Any]] = []
        self.refused: list[str] = []
        self.answer = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ok = webhooks.verify(receiver.secret, self.headers[webhooks.SIGNATURE_HEADER],
                                     body, receiver.clock.now())  # fmt: skip
                if receiver.answer == 200 and ok:
                    receiver.accepted.append({**json.loads(body),
                                              "_header_id": self.headers["Dosewatch-Event-Id"]})
                elif not ok:
                    receiver.refused.append(self.headers[webhooks.SIGNATURE_HEADER])
                self.send_response(receiver.answer if ok else 401)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def types(self) -> list[str]:
        return [e["type"] for e in self.accepted]


def _recorded(pool: ConnectionPool) -> list[str]:
    """The lifecycle as alarm_history recorded it, in event types: what receivers must get."""
    with pool.connection() as conn:
        rows = conn.execute("SELECT action FROM alarm_history ORDER BY id").fetchall()
    found = [webhooks.EVENT_TYPES[r["action"]] for r in rows if r["action"] in webhooks.EVENT_TYPES]
    assert {"alarm.opened", "alarm.acknowledged", "alarm.resolved"} <= set(found)
    return found


@pytest.fixture
def receiver(clock: FakeClock) -> Iterator[Receiver]:
    r = Receiver(clock)
    yield r
    r.server.shutdown()
    r.server.server_close()


def _subscribe(api: TestClient, url: str, **extra: Any) -> dict[str, Any]:
    r = api.post("/api/v1/webhooks", json={"url": url, **extra})
    assert r.status_code == 201, r.text
    return dict(r.json())


def _alarm_lifecycle(pool: ConnectionPool, clock: FakeClock, api: TestClient) -> int:
    add_dispenser(pool, "WH-1", clock.now())  # 08:00 local dose, window 45 min
    clock.advance(timedelta(hours=1))
    (alarm_id,) = sweep_missed_doses(pool, clock)
    body = {"by": "Anna"}
    assert api.post(f"/api/v1/alarms/{alarm_id}/acknowledge", json=body).status_code == 200
    r = api.post(f"/api/v1/alarms/{alarm_id}/resolve", json={**body, "outcome": "home_visit"})
    assert r.status_code == 200, r.text
    return alarm_id


def _run_jobs(pool: ConnectionPool, clock: FakeClock) -> int:
    fan_out(pool, clock)
    return WebhookDispatcher(pool, clock, jitter=lambda: 1.0).run()


def test_every_alarm_event_arrives_signed_once_in_order(
    pool: ConnectionPool, clock: FakeClock, receiver: Receiver
) -> None:
    with TestClient(create_app(pool, clock)) as api:
        api.headers.update(bearer(pool))
        sub = _subscribe(api, receiver.url)
        receiver.secret = sub["secret"]
        alarm_id = _alarm_lifecycle(pool, clock, api)
        _run_jobs(pool, clock)
        _run_jobs(pool, clock)  # a second round sends nothing again
        assert receiver.types() == _recorded(pool)
        assert {e["alarm"]["id"] for e in receiver.accepted} == {alarm_id}
        assert all(e["id"] == e["_header_id"] for e in receiver.accepted)
        assert "name" not in json.dumps(receiver.accepted[0]["alarm"])
        listed = api.get(f"/api/v1/webhooks/{sub['id']}/deliveries").json()
        assert {d["state"] for d in listed} == {"sent"} and len(listed) == len(_recorded(pool))
        assert "secret" not in api.get("/api/v1/webhooks").json()[0]


def test_a_receiver_that_is_down_gets_the_events_later_each_once(
    pool: ConnectionPool, clock: FakeClock, receiver: Receiver
) -> None:
    with TestClient(create_app(pool, clock)) as api:
        api.headers.update(bearer(pool))
        receiver.secret = _subscribe(api, receiver.url)["secret"]
        receiver.answer = 503
        _alarm_lifecycle(pool, clock, api)
        expected = _recorded(pool)
        assert _run_jobs(pool, clock) == len(expected) and receiver.accepted == []
        clock.advance(timedelta(seconds=5))
        assert _run_jobs(pool, clock) == 0, "not before the backoff"
        receiver.answer = 200
        clock.advance(timedelta(seconds=10))
        assert _run_jobs(pool, clock) == len(expected)
        clock.advance(timedelta(minutes=10))
        _run_jobs(pool, clock)
        assert receiver.types() == expected


def test_a_closed_port_is_retried_then_given_up_and_shown(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    with TestClient(create_app(pool, clock)) as api:
        api.headers.update(bearer(pool))
        sub = _subscribe(api, "http://127.0.0.1:9/nobody-listens", events=["alarm.opened"])
        add_dispenser(pool, "WH-2", clock.now())
        clock.advance(timedelta(hours=1))
        sweep_missed_doses(pool, clock)
        for _ in range(8):
            _run_jobs(pool, clock)
            clock.advance(timedelta(minutes=6))
        (delivery,) = api.get(f"/api/v1/webhooks/{sub['id']}/deliveries").json()
        assert delivery["state"] == "failed" and delivery["attempts"] == 6
        assert "Connect" in delivery["last_error"]


def test_a_team_subscription_hears_only_its_team(
    pool: ConnectionPool, clock: FakeClock, receiver: Receiver
) -> None:
    other = team(pool, "Söder")
    with TestClient(create_app(pool, clock)) as api:
        api.headers.update(bearer(pool))
        receiver.secret = _subscribe(api, receiver.url, team_id=other)["secret"]
        _alarm_lifecycle(pool, clock, api)
        _run_jobs(pool, clock)
        assert receiver.accepted == []
        assert api.post("/api/v1/webhooks", json={"url": receiver.url,
                                                   "team_id": 999999}).status_code == 404


def test_a_forged_or_replayed_request_fails_the_documented_check(clock: FakeClock) -> None:
    body = webhooks.body_bytes({"id": "alarm-history-1", "type": "alarm.opened"})
    header = webhooks.sign("whsec_right", body, clock.now())
    assert webhooks.verify("whsec_right", header, body, clock.now())
    assert not webhooks.verify("whsec_wrong", header, body, clock.now()), "forged"
    assert not webhooks.verify("whsec_right", header, body + b" ", clock.now()), "tampered"
    later = clock.now() + webhooks.TOLERANCE + timedelta(seconds=1)
    assert not webhooks.verify("whsec_right", header, body, later), "replayed"
    assert not webhooks.verify("whsec_right", "v1=abc", body, clock.now()), "no timestamp"

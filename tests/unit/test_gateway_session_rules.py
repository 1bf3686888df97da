"""The session rules (pure): who keeps a session taken over, and what health makes of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from dosewatch.domain.health import (
    CONFLICT_SHOWN_FOR,
    GATEWAY_SILENT_AFTER,
    in_conflict,
    session_problems,
)
from gateway.session import SETTLE_S, TAKEN_OVER, after_disconnect, yield_delay_s
from service.runtime import default_client_id

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
LONG, SHORT = SETTLE_S + 60, SETTLE_S / 5


@pytest.mark.parametrize(
    ("reason", "present", "held", "expected"),
    [
        (TAKEN_OVER, True, LONG, "reclaim"),  # held it first: take it back
        (TAKEN_OVER, False, LONG, "reclaim"),
        (TAKEN_OVER, True, SHORT, "yield"),  # the first one took it back
        (TAKEN_OVER, False, SHORT, "yield"),
        (0x80, True, SHORT, "reconnect"),  # the broker's DISCONNECT, another reason
        (0x8B, True, SHORT, "reconnect"),  # server shutting down
        # The connection just closed (3.1.1, or a broker that does not say why):
        (None, True, SHORT, "yield"),  # a resumed session lost at once
        (None, False, SHORT, "reconnect"),  # a new session had no other holder
        (None, True, LONG, "reconnect"),  # dropped after a while
    ],
)
def test_who_keeps_the_session(
    reason: int | None, present: bool, held: float, expected: str
) -> None:
    assert after_disconnect(reason, session_present=present, held_for_s=held) == expected


def test_a_yielding_gateway_backs_off_more_each_time_up_to_ten_minutes() -> None:
    delays = [yield_delay_s(n) for n in range(1, 8)]
    assert delays == [30, 60, 120, 240, 480, 600, 600]


def test_default_client_ids_come_from_the_installation_id() -> None:
    a = default_client_id("3f2b8c1e-9d4a-4b7e-8f00-0123456789ab")
    assert a == "dosewatch-gw-3f2b8c1e9d4a"
    assert default_client_id("3f2b8c1e-9d4a-4b7e-8f00-0123456789ab") == a
    assert default_client_id("77777777-9d4a-4b7e-8f00-0123456789ab") != a


@dataclass(frozen=True)
class Row:
    client_id: str
    state: str
    seen_at: datetime
    last_takeover_at: datetime | None = None


def test_a_running_yielded_gateway_fails_the_self_watch_and_names_the_setting() -> None:
    [problem] = session_problems([Row("gw-a", "yielded", NOW)], NOW)
    assert "gw-a" in problem and "DOSEWATCH_MQTT_CLIENT_ID" in problem
    assert in_conflict(Row("gw-a", "yielded", NOW), NOW)


def test_a_gateway_that_took_its_session_back_is_in_conflict_but_not_failing() -> None:
    row = Row("gw-a", "connected", NOW, last_takeover_at=NOW - timedelta(minutes=1))
    assert session_problems([row], NOW) == []
    assert in_conflict(row, NOW)
    assert not in_conflict(row, NOW + CONFLICT_SHOWN_FOR)


def test_a_stopped_or_silent_gateway_is_no_conflict() -> None:
    stopped = Row("gw-a", "stopped", NOW)
    silent = Row("gw-b", "yielded", NOW - GATEWAY_SILENT_AFTER - timedelta(seconds=1))
    assert session_problems([stopped, silent], NOW) == []
    assert not in_conflict(stopped, NOW) and not in_conflict(silent, NOW)

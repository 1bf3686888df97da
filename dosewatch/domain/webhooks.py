"""Outbound webhooks: which events a subscription gets, what they say, and the signature (pure).

Events are the alarm's recorded lifecycle (``alarm_history``): ``alarm.opened``,
``alarm.escalated``, ``alarm.acknowledged``, ``alarm.cleared``, ``alarm.resolved`` and
``alarm.reopened``. A subscription is for one team (the alarm's paged team or its patient's
current team, as everywhere in dosewatch) or for the whole installation.

The body carries ids and the clinical facts of the alarm, never the patient's name, address or
phone: a receiving system that needs them reads the patient through the signed-in API or FHIR.
A training alarm (training mode) is delivered like any other, marked ``"training": true``, so a
subscriber can practise with it or drop it.

Signature (the scheme Stripe and others use, so receivers have libraries and habits for it)::

    Dosewatch-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

The timestamp is signed with the body, so a captured request replayed later fails the
``tolerance`` check, and a forged one fails the HMAC. Receivers dedupe on
``Dosewatch-Event-Id``: delivery is at least once (a retry after a lost answer is possible).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

SIGNATURE_HEADER = "Dosewatch-Signature"
EVENT_ID_HEADER = "Dosewatch-Event-Id"
EVENT_TYPE_HEADER = "Dosewatch-Event-Type"
TOLERANCE = timedelta(minutes=5)

# alarm_history.action → event type; actions not listed (reminders) are not published.
EVENT_TYPES = {
    "opened": "alarm.opened",
    "escalated": "alarm.escalated",
    "acknowledged": "alarm.acknowledged",
    "cleared": "alarm.cleared",
    "resolved": "alarm.resolved",
    "reopened": "alarm.reopened",
}
ALL_EVENTS = frozenset(EVENT_TYPES.values())


@dataclass(frozen=True)
class Subscription:
    id: int
    team_id: int | None
    events: frozenset[str]


@dataclass(frozen=True)
class AlarmEvent:
    history_id: int
    action: str
    at: datetime
    actor: str
    via: str
    alarm_id: int
    kind: str
    priority: str
    state: str
    dispenser_id: str
    patient_id: int
    teams: frozenset[int]  # the alarm's paged team and its patient's current team
    team_id: int | None  # the team it pages (its patient's when it paged none)
    slot_due_at: datetime | None
    opened_at: datetime
    training: bool = False  # a training team's alarm: marked, so no receiver takes it as real


def event_type(action: str) -> str | None:
    return EVENT_TYPES.get(action)


def wants(sub: Subscription, event: AlarmEvent) -> bool:
    kind = event_type(event.action)
    if kind is None or kind not in sub.events:
        return False
    return sub.team_id is None or sub.team_id in event.teams


def event_id(event: AlarmEvent) -> str:
    """Stable per lifecycle fact, whichever process fans it out: the receivers' dedupe key."""
    return f"alarm-history-{event.history_id}"


def payload(event: AlarmEvent) -> dict[str, Any]:
    return {
        "id": event_id(event),
        "type": event_type(event.action),
        "occurred_at": event.at.isoformat(),
        "actor": event.actor,
        "via": event.via,
        "alarm": {
            "id": event.alarm_id,
            "kind": event.kind,
            "priority": event.priority,
            "state": event.state,
            "dispenser_id": event.dispenser_id,
            "patient_id": event.patient_id,
            "slot_due_at": event.slot_due_at.isoformat() if event.slot_due_at else None,
            "opened_at": event.opened_at.isoformat(),
            "training": event.training,
        },
    }


def fan_out(
    events: Iterable[AlarmEvent], subs: Iterable[Subscription]
) -> list[tuple[Subscription, AlarmEvent]]:
    subs = list(subs)
    return [(s, e) for e in events for s in subs if wants(s, e)]


def body_bytes(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def sign(secret: str, body: bytes, at: datetime) -> str:
    t = int(at.timestamp())
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(
    secret: str, header: str, body: bytes, now: datetime, tolerance: timedelta = TOLERANCE
) -> bool:
    """The receiver's check: a valid HMAC over this body, made within ``tolerance`` of now."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        t = int(parts["t"][0])
    except (KeyError, ValueError):
        return False
    if abs(now.timestamp() - t) > tolerance.total_seconds():
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, v) for v in parts.get("v1", []))

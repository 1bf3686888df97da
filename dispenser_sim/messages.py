"""Build protocol v1 payloads (pure)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def event(
    dispenser_id: str,
    seq: int,
    type_: str,
    occurred_at: datetime,
    *,
    dose_due_at: datetime | None = None,
    doses_left: int | None = None,
    detail: dict[str, Any] | None = None,
    event_id: str | None = None,
) -> bytes:
    body: dict[str, Any] = {
        "v": 1,
        "dispenser_id": dispenser_id,
        "event_id": event_id or str(uuid.uuid4()),
        "seq": seq,
        "type": type_,
        "occurred_at": rfc3339(occurred_at),
    }
    if dose_due_at is not None:
        body["dose_due_at"] = rfc3339(dose_due_at)
    if doses_left is not None:
        body["doses_left"] = doses_left
    if detail:
        body["detail"] = detail
    return json.dumps(body).encode()


def status(
    dispenser_id: str,
    at: datetime,
    *,
    battery_pct: int,
    on_mains: bool,
    doses_left: int,
    temperature_c: float,
    schedule_version: int | None,
    firmware: str = "3.2.1",
    rssi_dbm: int = -71,
) -> bytes:
    body: dict[str, Any] = {
        "v": 1,
        "dispenser_id": dispenser_id,
        "at": rfc3339(at),
        "battery_pct": battery_pct,
        "on_mains": on_mains,
        "doses_left": doses_left,
        "temperature_c": temperature_c,
        "firmware": firmware,
        "rssi_dbm": rssi_dbm,
    }
    if schedule_version is not None:
        body["schedule_version"] = schedule_version
    return json.dumps(body).encode()

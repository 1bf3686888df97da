"""The dispenser protocol as an AsyncAPI 3.0 document, generated from the models that validate it.

The schemas come from the same pydantic models the gateway validates with, so the published
contract cannot drift from what is enforced. Served at ``/asyncapi.json`` (no sign-in: it
describes the protocol, not anyone's data).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from dosewatch import __version__
from dosewatch.domain.protocol import MAX_PAYLOAD_BYTES, TOPIC_ROOT, Config, Event, Status

router = APIRouter()

_ID = {"dispenserId": {"description": "the dispenser's id, e.g. DSP-000123"}}


def _channel(kind: str, message: str, description: str) -> dict[str, Any]:
    return {
        "address": f"{TOPIC_ROOT}/{{dispenserId}}/{kind}",
        "parameters": _ID,
        "description": description,
        "messages": {message: {"$ref": f"#/components/messages/{message}"}},
    }


def document() -> dict[str, Any]:
    schemas = {m.__name__: m.model_json_schema() for m in (Event, Status, Config)}
    online = {
        "type": "string",
        "enum": ["0", "1"],
        "description": "'1' retained on connect; '0' the Last Will",
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "dosewatch dispenser protocol",
            "version": f"1 (server {__version__})",
            "description": (
                "Home medication dispensers and the dosewatch gateway over MQTT. QoS 1 on every "
                f"topic; payloads are UTF-8 JSON of at most {MAX_PAYLOAD_BYTES} bytes; every "
                "timestamp is RFC 3339 with an offset. Anything invalid is quarantined with the "
                "reason and the raw bytes, never dropped."
            ),
        },
        "defaultContentType": "application/json",
        "channels": {
            "events": _channel("events", "Event", "Dose and device events, sent by the dispenser."),
            "status": _channel("status", "Status", "A heartbeat with the device's state."),
            "online": _channel("online", "Online", "Presence: '1' retained, '0' as Last Will."),
            "config": _channel("config", "Config", "The schedule, retained, sent by dosewatch."),
        },
        "operations": {
            "sendEvent": {"action": "send", "channel": {"$ref": "#/channels/events"}},
            "sendStatus": {"action": "send", "channel": {"$ref": "#/channels/status"}},
            "sendOnline": {"action": "send", "channel": {"$ref": "#/channels/online"}},
            "receiveConfig": {"action": "receive", "channel": {"$ref": "#/channels/config"}},
        },
        "components": {
            "messages": {
                "Event": {"payload": schemas["Event"]},
                "Status": {"payload": schemas["Status"]},
                "Config": {"payload": schemas["Config"]},
                "Online": {"contentType": "text/plain", "payload": online},
            }
        },
    }


@router.get("/asyncapi.json", include_in_schema=False)
def asyncapi() -> dict[str, Any]:
    return document()

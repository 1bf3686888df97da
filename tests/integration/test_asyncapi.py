"""The AsyncAPI document: served without sign-in, and every valid example fits its schemas."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from dashboards.app import create_app
from dosewatch.clock import FakeClock

VALID = Path(__file__).parent.parent / "fixtures" / "protocol" / "valid"


def test_the_protocol_document_is_served_and_matches_the_examples(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    with TestClient(create_app(pool, clock)) as client:
        r = client.get("/asyncapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["asyncapi"].startswith("3.")
    assert set(doc["channels"]) == {"events", "status", "online", "config"}
    assert doc["channels"]["events"]["address"] == "dosewatch/v1/dispensers/{dispenserId}/events"
    messages = doc["components"]["messages"]
    examples = sorted(VALID.glob("*.json"))
    assert examples
    for path in examples:
        kind = (
            "Config"
            if path.name.startswith("config")
            else ("Status" if path.name.startswith("status") else "Event")
        )
        jsonschema.validate(json.loads(path.read_text()), messages[kind]["payload"])
    # And the schema refuses what the gateway refuses.
    bad = {**json.loads((VALID / "event-dose_taken.json").read_text()), "v": 2}
    try:
        jsonschema.validate(bad, messages["Event"]["payload"])
    except jsonschema.ValidationError:
        pass
    else:
        raise AssertionError("a v=2 event fits the published schema")

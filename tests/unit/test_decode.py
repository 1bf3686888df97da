"""decode(): bytes from a topic → a validated message, an online flag, or a reasoned rejection."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispenser_sim.messages import event as build_event
from dosewatch.domain.protocol import (
    MAX_PAYLOAD_BYTES,
    TOPIC_ROOT,
    Config,
    Event,
    EventType,
    Status,
    event_topic,
    topic_dispenser_id,
)
from gateway.decode import Online, Rejection, decode

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "protocol"
VALID = sorted((FIXTURES / "valid").iterdir())
INVALID = sorted((FIXTURES / "invalid").iterdir())
# config.json is the server → device message; the gateway neither subscribes to nor decodes it.
DEVICE_VALID = [p for p in VALID if p.name != "config.json"]
DSP = "DSP-000123"


def topic(dispenser_id: str, kind: str) -> str:
    return f"{TOPIC_ROOT}/{dispenser_id}/{kind}"


def kind_of(path: Path) -> str:
    return "status" if path.name.startswith("status") else "events"


def test_fixture_sets_are_present() -> None:
    assert len(DEVICE_VALID) >= 15
    assert len(INVALID) >= 10
    assert {p.name for p in VALID} >= {"status.json", "config.json", "event-dose_taken.json"}


# --- valid fixtures --------------------------------------------------------------------------


@pytest.mark.parametrize("path", DEVICE_VALID, ids=lambda p: p.name)
def test_valid_fixture_is_accepted(path: Path) -> None:
    payload = path.read_bytes()
    raw = json.loads(payload)
    result = decode(topic(raw["dispenser_id"], kind_of(path)), payload)
    expected_type = Status if kind_of(path) == "status" else Event
    assert isinstance(result, expected_type), result
    assert result.dispenser_id == raw["dispenser_id"]
    if isinstance(result, Event):
        assert result.event_id == raw["event_id"]
        assert result.seq == raw["seq"]
        assert result.type == EventType(raw["type"])
        assert result.occurred_at.tzinfo is not None
        if "dose_due_at" in raw:
            assert result.dose_due_at is not None and result.dose_due_at.tzinfo is not None
        else:
            assert result.dose_due_at is None
    else:
        assert result.at.tzinfo is not None


def test_every_event_type_has_a_valid_fixture() -> None:
    types = {json.loads(p.read_bytes()).get("type") for p in DEVICE_VALID}
    assert {t.value for t in EventType} <= types


def test_extra_fields_are_kept() -> None:
    payload = (FIXTURES / "valid" / "event-with-extra-fields.json").read_bytes()
    result = decode(topic(DSP, "events"), payload)
    assert isinstance(result, Event)
    assert result.model_extra == {"vendor": {"fw_build": "a1b2"}}


def test_valid_event_fields_are_parsed() -> None:
    payload = (FIXTURES / "valid" / "event-dose_taken.json").read_bytes()
    result = decode(topic(DSP, "events"), payload)
    assert isinstance(result, Event)
    assert result.occurred_at == datetime(2026, 11, 23, 7, 4, 12, tzinfo=UTC)
    assert result.dose_due_at == datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    assert result.doses_left == 27
    assert result.detail == {}


def test_status_fields_are_parsed() -> None:
    result = decode(topic(DSP, "status"), (FIXTURES / "valid" / "status.json").read_bytes())
    assert isinstance(result, Status)
    assert (result.battery_pct, result.on_mains, result.doses_left) == (87, True, 27)
    assert (result.temperature_c, result.firmware, result.rssi_dbm) == (21.5, "3.2.1", -71)
    assert result.schedule_version == 12


def test_config_fixture_is_a_valid_config_message_but_not_for_the_gateway() -> None:
    payload = (FIXTURES / "valid" / "config.json").read_bytes()
    config = Config.model_validate_json(payload)
    assert config.dispenser_id == DSP and config.version == 12
    assert [d.window_min for d in config.doses] == [45, 45]
    # The gateway only consumes events and status; config is server → device.
    on_config = decode(topic(DSP, "config"), payload)
    assert isinstance(on_config, Rejection) and "config" in on_config.reason
    on_events = decode(topic(DSP, "events"), payload)
    assert isinstance(on_events, Rejection) and "event_id" in on_events.reason


@pytest.mark.parametrize("path", DEVICE_VALID, ids=lambda p: p.name)
def test_valid_fixture_on_another_dispensers_topic_is_rejected(path: Path) -> None:
    payload = path.read_bytes()
    own = json.loads(payload)["dispenser_id"]
    spoofer = "DSP-999999"
    assert spoofer != own
    result = decode(topic(spoofer, kind_of(path)), payload)
    assert isinstance(result, Rejection)
    assert spoofer in result.reason and own in result.reason
    assert result.dispenser_id == spoofer  # quarantined under the topic's id


@pytest.mark.parametrize("path", DEVICE_VALID, ids=lambda p: p.name)
def test_valid_fixture_on_the_wrong_kind_is_rejected(path: Path) -> None:
    payload = path.read_bytes()
    own = json.loads(payload)["dispenser_id"]
    wrong = "events" if kind_of(path) == "status" else "status"
    result = decode(topic(own, wrong), payload)
    assert isinstance(result, Rejection)
    assert wrong in result.reason


# --- invalid fixtures ------------------------------------------------------------------------

EXPECTED_WORDS = {
    "not-utf8.bin": ["UTF-8"],
    "not-json.txt": ["JSON"],
    "oversize.json": [str(MAX_PAYLOAD_BYTES), "limit"],
    "payload-is-array.json": ["object", "list"],
    "missing-event_id.json": ["event_id"],
    "naive-timestamp.json": ["occurred_at", "timezone"],
    "negative-doses-left.json": ["doses_left"],
    "seq-is-string.json": ["seq"],
    "unknown-type.json": ["type"],
    "wrong-version.json": ["v:"],
}


def test_every_invalid_fixture_has_expected_words() -> None:
    assert {p.name for p in INVALID} == set(EXPECTED_WORDS)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
@pytest.mark.parametrize("kind", ["events", "status"])
def test_invalid_fixture_is_rejected_with_a_reason(path: Path, kind: str) -> None:
    result = decode(topic(DSP, kind), path.read_bytes())
    assert isinstance(result, Rejection)
    assert result.reason.strip()
    assert result.dispenser_id == DSP
    if kind == "events":
        for word in EXPECTED_WORDS[path.name]:
            assert word in result.reason, (word, result.reason)


def test_oversize_reason_gives_the_size() -> None:
    payload = (FIXTURES / "invalid" / "oversize.json").read_bytes()
    result = decode(topic(DSP, "events"), payload)
    assert isinstance(result, Rejection)
    assert str(len(payload)) in result.reason


def _padded_event(size: int) -> bytes:
    body = build_event(DSP, 1, "error", datetime(2026, 11, 23, tzinfo=UTC), event_id="e-1")
    return body + b" " * (size - len(body))


def test_payload_at_the_limit_is_accepted_one_byte_more_is_not() -> None:
    at_limit = _padded_event(MAX_PAYLOAD_BYTES)
    assert len(at_limit) == MAX_PAYLOAD_BYTES
    assert isinstance(decode(topic(DSP, "events"), at_limit), Event)
    over = _padded_event(MAX_PAYLOAD_BYTES + 1)
    result = decode(topic(DSP, "events"), over)
    assert isinstance(result, Rejection) and "limit" in result.reason


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"null",
        b"42",
        b'"text"',
        b"true",
        b"{}",
        b'{"v": 1}',
        b"\xef\xbb\xbf{}",  # UTF-8 BOM
        b"{'v': 1}",
    ],
)
def test_assorted_junk_is_rejected(payload: bytes) -> None:
    result = decode(topic(DSP, "events"), payload)
    assert isinstance(result, Rejection) and result.reason


@pytest.mark.parametrize(
    "payload",
    [
        b"[" * 1000 + b"]" * 1000,  # 2000 bytes of well-formed JSON, far under the 8 KiB limit
        b'{"a":' * 1200 + b"1" + b"}" * 1200,
    ],
    ids=["nested-arrays", "nested-objects"],
)
def test_deeply_nested_json_is_rejected_not_raised(payload: bytes) -> None:
    """The module promises that nothing raises on input. json.loads raises RecursionError (not a
    ValueError) on deep nesting, which decode() does not catch."""
    assert len(payload) <= MAX_PAYLOAD_BYTES
    result = decode(topic(DSP, "events"), payload)
    assert isinstance(result, Rejection)


# --- topics ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_topic",
    [
        "",
        "/",
        TOPIC_ROOT,
        f"{TOPIC_ROOT}/{DSP}",
        f"{TOPIC_ROOT}/{DSP}/events/extra",
        f"/{TOPIC_ROOT}/{DSP}/events",
        f"dosewatch/v2/dispensers/{DSP}/events",
        f"Dosewatch/v1/dispensers/{DSP}/events",
        f"dosewatch/v1/dispenser/{DSP}/events",
        "completely/unrelated",
    ],
)
def test_unparseable_topics_are_rejected_without_an_id(bad_topic: str) -> None:
    payload = (FIXTURES / "valid" / "event-dose_taken.json").read_bytes()
    result = decode(bad_topic, payload)
    assert isinstance(result, Rejection)
    assert result.dispenser_id is None
    assert "topic" in result.reason


@pytest.mark.parametrize("kind", ["config", "commands", "", "Events", "event"])
def test_unknown_topic_kinds_are_rejected(kind: str) -> None:
    payload = (FIXTURES / "valid" / "event-dose_taken.json").read_bytes()
    result = decode(topic(DSP, kind), payload)
    assert isinstance(result, Rejection)
    assert result.dispenser_id == DSP
    assert repr(kind) in result.reason


def test_topic_helpers_round_trip() -> None:
    assert event_topic(DSP) == f"dosewatch/v1/dispensers/{DSP}/events"
    assert topic_dispenser_id(event_topic(DSP)) == (DSP, "events")
    assert topic_dispenser_id("dosewatch/v1/dispensers/x") is None


# --- online ----------------------------------------------------------------------------------


def test_online_flags() -> None:
    assert decode(topic(DSP, "online"), b"1") == Online(DSP, True)
    assert decode(topic(DSP, "online"), b"0") == Online(DSP, False)


@pytest.mark.parametrize(
    "payload", [b"", b"2", b"01", b"1\n", b" 1", b"true", b"false", b"on", b'"1"', b"\xff"]
)
def test_online_junk_is_rejected(payload: bytes) -> None:
    result = decode(topic(DSP, "online"), payload)
    assert isinstance(result, Rejection)
    assert result.dispenser_id == DSP
    assert result.reason


def test_oversize_online_is_rejected_by_size() -> None:
    result = decode(topic(DSP, "online"), b"1" * (MAX_PAYLOAD_BYTES + 1))
    assert isinstance(result, Rejection) and "limit" in result.reason


def test_online_on_a_topic_with_an_invalid_dispenser_id_is_rejected() -> None:
    """Dispenser ids are 3-64 characters of A-Z a-z 0-9 - _ (docs/protocol.md). Events and status
    with such a topic are rejected (the payload id can never match), but an online message is
    accepted as Online for whatever the topic segment is, including the empty string."""
    results = {
        bad: decode(topic(bad, "online"), b"1") for bad in ("", "ab", "bad id", "x" * 65, "é-é-é")
    }
    accepted = {k: v for k, v in results.items() if not isinstance(v, Rejection)}
    assert accepted == {}


# --- properties ------------------------------------------------------------------------------

dispenser_ids = st.from_regex(r"\A[A-Za-z0-9_-]{3,64}\Z")
kinds = st.sampled_from(["events", "status", "online", "config", "x"])
structured_topics = st.builds(topic, st.one_of(dispenser_ids, st.text(max_size=10)), kinds)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


def _json_event_like(draw_obj: dict[str, Any], dispenser_id: str) -> bytes:
    base: dict[str, Any] = {
        "v": 1,
        "dispenser_id": dispenser_id,
        "event_id": "e",
        "seq": 0,
        "type": "dose_taken",
        "occurred_at": "2026-11-23T07:04:12Z",
    }
    base.update(draw_obj)
    return json.dumps(base).encode()


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(
    topic_=st.one_of(st.text(), structured_topics),
    payload=st.one_of(
        st.binary(max_size=MAX_PAYLOAD_BYTES + 10),
        st.sampled_from([b"0", b"1", b"{}", b"[]"]),
        json_values.map(lambda v: json.dumps(v).encode()),
    ),
)
def test_decode_never_raises(topic_: str, payload: bytes) -> None:
    result = decode(topic_, payload)
    assert isinstance(result, Event | Status | Online | Rejection)
    if isinstance(result, Rejection):
        assert result.reason
    if isinstance(result, Event | Status | Online):
        parsed = topic_dispenser_id(topic_)
        assert parsed is not None and parsed[0] == result.dispenser_id


@settings(max_examples=300)
@given(
    dispenser_id=dispenser_ids,
    extra=st.dictionaries(
        st.sampled_from(
            ["v", "event_id", "seq", "type", "occurred_at", "dose_due_at", "doses_left", "detail"]
        ),
        json_values,
        max_size=3,
    ),
)
def test_mutated_events_never_raise_and_accepted_ones_match_topic(
    dispenser_id: str, extra: dict[str, Any]
) -> None:
    payload = _json_event_like(extra, dispenser_id)
    result = decode(topic(dispenser_id, "events"), payload)
    assert isinstance(result, Event | Rejection)
    if isinstance(result, Event):
        assert result.dispenser_id == dispenser_id
        assert result.seq >= 0
        assert result.doses_left is None or result.doses_left >= 0


@settings(max_examples=200)
@given(
    dispenser_id=dispenser_ids,
    seq=st.integers(0, 2**53),
    type_=st.sampled_from(sorted(EventType)),
    occurred=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    due=st.none()
    | st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    doses_left=st.none() | st.integers(0, 10_000),
)
def test_simulator_events_round_trip(
    dispenser_id: str,
    seq: int,
    type_: EventType,
    occurred: datetime,
    due: datetime | None,
    doses_left: int | None,
) -> None:
    payload = build_event(
        dispenser_id, seq, type_.value, occurred, dose_due_at=due, doses_left=doses_left
    )
    result = decode(event_topic(dispenser_id), payload)
    assert isinstance(result, Event)
    assert (result.dispenser_id, result.seq, result.type) == (dispenser_id, seq, type_)
    assert result.occurred_at == occurred
    assert result.dose_due_at == due
    assert result.doses_left == doses_left
    other = "OTHER-" + dispenser_id[:50]
    spoofed = decode(event_topic(other), payload)
    assert isinstance(spoofed, Rejection) and other in spoofed.reason

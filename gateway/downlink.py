"""The config down-link: the server tells a dispenser which schedule to follow.

``dosewatch/v1/dispensers/<id>/config``, QoS 1, **retained** (docs/protocol.md): a device that
is offline when the schedule changes gets the newest config the moment it (re)subscribes. It
answers with a ``config_applied`` event (``detail.version``), which the writer records; see
:func:`dosewatch.db.status.config_out_of_date` for the dispensers that have not applied theirs.

Call :func:`on_schedule_changed` after the transaction that saved a new schedule version has
committed (publishing first could tell a device about a version that then rolls back).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
from pydantic import ValidationError

from dosewatch.db import DbConn
from dosewatch.db import schedules as schedule_sql
from dosewatch.db import status as status_sql
from dosewatch.domain.protocol import MAX_PAYLOAD_BYTES, TOPIC_ROOT, Config

log = logging.getLogger(__name__)


class DownlinkError(Exception):
    """The config could not be published (invalid, too large, or the broker did not take it)."""


def config_topic(dispenser_id: str) -> str:
    return f"{TOPIC_ROOT}/{dispenser_id}/config"


def config_message(schedule: dict[str, Any]) -> dict[str, Any]:
    """A stored schedule version (a row of ``schedules``) → the protocol v1 config message.

    Protocol v1 has only ``time`` and ``window_min`` per dose; labels, weekdays and
    time-critical flags stay on the server (a weekday-only dose is presented every day by a v1
    device, and the server plans and alarms only on its weekdays).
    """
    return {
        "v": 1,
        "dispenser_id": schedule["dispenser_id"],
        "version": int(schedule["version"]),
        "timezone": schedule["timezone"],
        "doses": [
            {"time": str(d["time"])[:5], "window_min": int(d["window_min"])}
            for d in schedule["doses"]
        ],
        "valid_from": schedule["valid_from"].isoformat(),
    }


def publish_config(
    client: mqtt.Client,
    dispenser_id: str,
    config_json: str | bytes | dict[str, Any],
    *,
    timeout_s: float = 10.0,
) -> int:
    """Publish ``config_json`` retained at QoS 1 on the dispenser's config topic.

    The message is checked against the protocol first (a wrong config must never reach a
    device), including that it names ``dispenser_id``. Returns its version once the broker has
    acknowledged it; raises :class:`DownlinkError` otherwise.
    """
    if isinstance(config_json, dict):
        data = config_json
    else:
        try:
            data = json.loads(config_json)
        except ValueError as exc:
            raise DownlinkError(f"config for {dispenser_id} is not JSON: {exc}") from None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise DownlinkError(f"config for {dispenser_id} is not a valid v1 config: {exc}") from None
    if config.dispenser_id != dispenser_id:
        raise DownlinkError(f"config names dispenser {config.dispenser_id!r}, not {dispenser_id!r}")
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise DownlinkError(f"config for {dispenser_id} is {len(payload)} bytes; limit 8 KiB")
    info = client.publish(config_topic(dispenser_id), payload, qos=1, retain=True)
    if info.rc != mqtt.MQTT_ERR_SUCCESS:
        raise DownlinkError(
            f"could not publish config for {dispenser_id}: {mqtt.error_string(info.rc)}"
        )
    try:
        info.wait_for_publish(timeout=timeout_s)
    except (RuntimeError, ValueError) as exc:
        raise DownlinkError(f"config for {dispenser_id} not sent: {exc}") from None
    if not info.is_published():
        raise DownlinkError(f"the broker did not acknowledge config for {dispenser_id} in time")
    log.info("published config version %d to %s", config.version, dispenser_id)
    return config.version


def on_schedule_changed(
    conn: DbConn, client: mqtt.Client, dispenser_id: str, now: datetime
) -> int | None:
    """The schedule-change hook: publish the dispenser's current schedule as its config and
    record it as published. Returns the version, or None when it has no schedule.

    Idempotent (the retained message is replaced by the same one), so it is also the way to
    re-send a config, e.g. to every dispenser listed by ``config_out_of_date``.
    """
    schedule = schedule_sql.current_schedule(conn, dispenser_id)
    if schedule is None:
        return None
    version = publish_config(client, dispenser_id, config_message(schedule))
    with conn.transaction():
        status_sql.record_config_published(conn, dispenser_id, version, now)
    return version


def publish_pending(conn: DbConn, client: mqtt.Client, now: datetime) -> list[str]:
    """Publish every config not yet published for its dispenser's current schedule version.

    This is how a schedule saved by any process (the web app has no MQTT client) reaches the
    device: the gateway runs it every few seconds. The published version is durable state, so
    a restart or a failed publish just means the next run tries again.
    """
    done = []
    for dispenser_id in status_sql.configs_to_publish(conn):
        try:
            on_schedule_changed(conn, client, dispenser_id, now)
        except DownlinkError as exc:
            log.warning("config for %s not published yet: %s", dispenser_id, exc)
            continue
        done.append(dispenser_id)
    return done

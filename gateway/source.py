"""Where the gateway's messages come from: a small protocol, and the broker behind it.

:class:`MqttSource` is the production source. Tests of the gateway's own logic give the gateway
an in-memory source instead (``tests/gateway_helpers.py``); the real-broker tests keep this one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import paho.mqtt.client as mqtt

from dosewatch.config import MqttUrl
from dosewatch.domain.protocol import TOPIC_ROOT
from gateway.connection import connect_client
from gateway.session import SessionGuard

SUBSCRIPTIONS = (
    f"{TOPIC_ROOT}/+/events",
    f"{TOPIC_ROOT}/+/status",
    f"{TOPIC_ROOT}/+/online",  # retained '1' on connect, Last Will '0': presence
)


def subscriptions(share_group: str | None) -> tuple[str, ...]:
    """The gateway's topic filters; with a group, as MQTT shared subscriptions, so that the
    broker spreads messages over every gateway in the group (each with its own client id and
    session). Correct in any order: storage is idempotent and matching order-independent.
    A shared subscription gets no retained messages, so presence then comes from heartbeats
    and live Last Will messages only."""
    if share_group is None:
        return SUBSCRIPTIONS
    return tuple(f"$share/{share_group}/{topic}" for topic in SUBSCRIPTIONS)


@dataclass(frozen=True)
class Delivery:
    """A message as a source hands it over; ``mid`` and ``qos`` are what acknowledging needs."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    # Set only on the broker's stored copy, sent because we subscribed; a live message reaches
    # an existing subscription with it cleared (MQTT 3.1.1 and 5 defaults).
    retained: bool = False


class MessageSource(Protocol):
    def start(self, deliver: Callable[[Delivery], None]) -> None:
        """Begin delivering (from any thread)."""

    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge a delivered message: it is committed."""

    def stop(self) -> None: ...


class MqttSource:
    """The broker: a persistent session at QoS 1 with manual acknowledgement."""

    def __init__(
        self,
        url: MqttUrl,
        *,
        client_id: str,
        session_expiry_s: int,
        prefer_v5: bool = True,
        share_group: str | None = None,
    ) -> None:
        self.url, self.client_id, self._session_expiry_s = url, client_id, session_expiry_s
        # Set by the gateway: tells a session taken over from a lost connection.
        self.session: SessionGuard[Any] | None = None
        self._prefer_v5 = prefer_v5
        self._subscriptions = subscriptions(share_group)
        self.client: mqtt.Client | None = None  # the down-link publishes through it

    def start(self, deliver: Callable[[Delivery], None]) -> None:
        def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
            deliver(Delivery(msg.topic, bytes(msg.payload), msg.mid, msg.qos, msg.retain))

        self.client = connect_client(
            self.url,
            self.client_id,
            session_expiry_s=self._session_expiry_s,
            prefer_v5=self._prefer_v5,
            manual_ack=True,
            on_message=on_message,
            subscriptions=self._subscriptions,
            session=self.session,
        )

    def ack(self, mid: int, qos: int) -> None:
        assert self.client is not None
        if qos > 0:
            self.client.ack(mid, qos)

    def stop(self) -> None:
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()

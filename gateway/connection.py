"""Connecting to the broker: MQTT 5 first, 3.1.1 where the broker speaks only that.

One attempt per protocol version, each with its own client and its own handshake state. The
first CONNACK decides: success returns a running client (paho's network thread started, and
paho reconnecting by itself from then on, re-subscribing in ``on_connect``); a refusal of the
version moves to 3.1.1; anything else is a :class:`ConfigError` with one line saying what to fix.
Every connect and disconnect after that is reported to the gateway's
:class:`~gateway.session.SessionGuard`, which tells a session taken over from a lost connection.
"""

from __future__ import annotations

import logging
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from dosewatch.config import ConfigError, MqttUrl
from gateway.session import SessionGuard

log = logging.getLogger(__name__)

# The gateway tells an MQTT 5 broker it may have this many QoS 1 messages in flight, so that
# acknowledging only after commit does not throttle ingest to the broker's default window.
RECEIVE_MAXIMUM = 10_000
# What a 3.1.1-only broker answers (or how it hangs up) when offered MQTT 5.
_NOT_V5 = {"Unsupported protocol version", "Unspecified error", "Protocol error"}


@dataclass
class _Handshake:
    subscriptions: tuple[str, ...]
    session: SessionGuard[Any] | None
    ready: threading.Event = field(default_factory=threading.Event)
    # Set on SUBACK: a caller that publishes right after connect_client() returns must not race
    # the subscription (a message published before it exists is simply not delivered to us).
    subscribed: threading.Event = field(default_factory=threading.Event)
    rc: ReasonCode | None = None
    _sub_mid: int | None = None

    def on_connect(
        self, c: mqtt.Client, _u: object, flags: mqtt.ConnectFlags, rc: ReasonCode, _p: object
    ) -> None:
        self.rc = rc
        if rc.is_failure:
            self.ready.set()
            return
        if self.session is not None:  # before any message of this connection arrives
            self.session.connected(c, flags.session_present)
        self.ready.set()
        if self.subscriptions:
            _, self._sub_mid = c.subscribe([(topic, 1) for topic in self.subscriptions])
        else:
            self.subscribed.set()

    def on_subscribe(self, _c: mqtt.Client, _u: object, mid: int, _rcs: object, _p: object) -> None:
        if mid == self._sub_mid:
            self.subscribed.set()

    def on_disconnect(
        self, c: mqtt.Client, _u: object, flags: mqtt.DisconnectFlags, rc: ReasonCode, _p: object
    ) -> None:
        if not self.ready.is_set():  # hung up before any CONNACK: a refusal of this version
            self.rc = rc
            self.ready.set()
        elif self.session is not None:
            self.session.disconnected(c, rc, flags.is_disconnect_packet_from_server)
        elif rc.is_failure:  # not our own disconnect(): paho reconnects by itself
            log.warning("MQTT connection lost (%s); reconnecting", rc)


def connect_client(
    url: MqttUrl,
    client_id: str,
    *,
    session_expiry_s: int,
    clean: bool = False,
    prefer_v5: bool = True,
    timeout_s: float = 10.0,
    manual_ack: bool = False,
    on_message: mqtt.CallbackOnMessage | None = None,
    subscriptions: tuple[str, ...] = (),
    session: SessionGuard[Any] | None = None,
) -> mqtt.Client:
    """Connect, start paho's network thread, and return the client (see the module docstring)."""
    for protocol in (mqtt.MQTTv5, mqtt.MQTTv311) if prefer_v5 else (mqtt.MQTTv311,):
        v5 = protocol == mqtt.MQTTv5
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            clean_session=None if v5 else clean,
            manual_ack=manual_ack,
        )
        if url.username:
            client.username_pw_set(url.username, url.password)
        if url.tls:
            client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        if on_message is not None:
            client.on_message = on_message
        handshake = _Handshake(subscriptions, session)
        client.on_connect = handshake.on_connect
        client.on_disconnect = handshake.on_disconnect
        client.on_subscribe = handshake.on_subscribe
        props = None
        if v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 0 if clean else session_expiry_s
            props.ReceiveMaximum = RECEIVE_MAXIMUM
        try:
            client.connect(
                url.host,
                url.port,
                keepalive=30,
                clean_start=clean if v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
                properties=props,
            )
        except OSError as exc:
            raise ConfigError(
                f"cannot reach the MQTT broker at {url.redacted()} ({exc.strerror or exc}); "
                "start it or fix DOSEWATCH_MQTT_URL (unset it to use the embedded broker)"
            ) from None
        client.loop_start()
        handshake.ready.wait(timeout_s)
        rc = handshake.rc
        if rc is not None and not rc.is_failure:
            if not handshake.subscribed.wait(timeout_s):
                log.warning("no SUBACK from %s within %.0f s", url.redacted(), timeout_s)
            log.info(
                "MQTT %s connected to %s as %s", "5" if v5 else "3.1.1", url.redacted(), client_id
            )
            return client
        client.disconnect()
        client.loop_stop()
        if v5 and (rc is None or rc.getName() in _NOT_V5):
            log.warning(
                "broker %s does not speak MQTT 5 (%s); falling back to 3.1.1 (fine for a demo, "
                "not for a fleet: the in-flight window is the broker's default)",
                url.redacted(),
                rc or "no answer",
            )
            continue
        if rc is None:
            raise ConfigError(
                f"the MQTT broker at {url.redacted()} did not answer CONNECT in "
                f"{timeout_s:.0f} s; check DOSEWATCH_MQTT_URL"
            )
        raise ConfigError(
            f"the MQTT broker at {url.redacted()} refused the connection: {rc}; "
            "check the user and password in DOSEWATCH_MQTT_URL"
        )
    raise ConfigError(f"no MQTT protocol version accepted by {url.redacted()}")

"""Settings from the environment, validated once at start-up.

Every variable is prefixed ``DOSEWATCH_``. A missing database or broker URL is not an error: it
means "start the embedded one" (see :mod:`service.embedded`), so a newcomer needs no set-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dosewatch.domain.offline import OFFLINE_AFTER


class ConfigError(Exception):
    """A setting is wrong; the message says which and how to fix it (one line)."""


@dataclass(frozen=True)
class MqttUrl:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool

    def redacted(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}:***@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"


def parse_mqtt_url(url: str) -> MqttUrl:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"scheme must be mqtt:// or mqtts://, got {parts.scheme or 'none'!r}")
    if not parts.hostname:
        raise ValueError("no host in the URL")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"bad port: {exc}") from None
    tls = parts.scheme == "mqtts"
    return MqttUrl(
        host=parts.hostname,
        port=port or (8883 if tls else 1883),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DOSEWATCH_", extra="ignore")

    database_url: str | None = Field(default=None, description="PostgreSQL URL; unset = embedded")
    mqtt_url: str | None = Field(
        default=None, description="mqtt:// or mqtts:// URL; unset = embedded"
    )
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    timezone: str = "Europe/Stockholm"
    # The gateway's MQTT client id is its persistent-session identity: keep it stable per process.
    # Unset: "dosewatch-gw-" + this database's installation id (service.runtime.client_id).
    mqtt_client_id: str | None = None
    # Several gateways share the load through `$share/<group>/…` subscriptions; give each its
    # own DOSEWATCH_MQTT_CLIENT_ID. Unset: one gateway, plain subscriptions.
    mqtt_share_group: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # auto: MQTT 5, falling back to 3.1.1 for brokers that only speak that (e.g. amqtt).
    mqtt_protocol: Literal["auto", "5", "3.1.1"] = "auto"
    # How long the broker keeps the gateway's session (and queued QoS 1 messages) while it is away.
    mqtt_session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0)
    sweep_interval_s: float = Field(default=5.0, gt=0)
    # Connections a backlog of due windows (the 08:00 rush) is drained over, by one alarm process
    # and by all of them together (advisory-lock slots): about the database's cores; more contend.
    sweep_connections: int = Field(default=2, ge=1, le=8)  # the pool holds 8
    plan_horizon_h: int = Field(default=48, ge=24, le=24 * 14)
    # A dispenser with no status heartbeat for this long is offline (mark_silent_offline).
    offline_after_min: float = Field(default=OFFLINE_AFTER.total_seconds() / 60, gt=0)
    # A gateway running on its own serves its Prometheus metrics here (unset: not served; in
    # `dosewatch run` they are at /metrics/gateway on the web app).
    gateway_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # The broker's password file that `dosewatch dispenser provision` adds devices to.
    mqtt_password_file: str | None = None
    # Twilio (SMS and voice calls). All unset = console-only mode: nobody is paged, and start-up
    # logs a loud warning (alarms.twilio_notifier.notifier_from_settings).
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None  # also the key that signs Twilio's webhooks
    twilio_from: str | None = Field(default=None, description="E.164 sender, e.g. +46701234567")
    # Where Twilio reaches this server (callbacks, TwiML, and the URL webhook signatures cover),
    # e.g. https://dosewatch.example.org
    public_url: str | None = None
    # Twilio's REST API; tests point it at a local stand-in.
    twilio_api_url: str = "https://api.twilio.com"
    # SCAIP forwarding to an alarm receiving centre: the local SIP address (host:port) the
    # centre answers to. Unset: nothing is forwarded (teams' SCAIP settings wait, and say so).
    scaip_sip_local: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.:\[\]-]+:[0-9]{1,5}$")
    # --- Reports: storage mode, compression/retention of raw history, economics -------------
    # auto: TimescaleDB where the extension is installed; postgresql: plain tables regardless.
    storage: Literal["auto", "postgresql"] = "auto"
    compress_events_after_days: int = Field(default=30, ge=1)
    compress_status_after_days: int = Field(default=7, ge=1)
    retention_events_days: int = Field(default=0, ge=0)  # 0: keep dose events forever
    retention_status_days: int = Field(default=400, ge=0)  # 0: keep status history forever
    economics_visit_anyway_share: float = Field(default=0.38, ge=0, le=1)
    economics_minutes_per_visit: float = Field(default=15.0, ge=0)
    economics_cost_per_hour_sek: float = Field(default=500.0, ge=0)
    economics_cost_per_visit_sek: float | None = Field(default=None, ge=0)
    economics_dispenser_rent_sek_per_month: float = Field(default=800.0, ge=0)

    @field_validator("database_url")
    @classmethod
    def _check_db(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        if urlsplit(v).scheme not in ("postgresql", "postgres"):
            raise ValueError("must start with postgresql://")
        return v

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        parse_mqtt_url(v)
        return v

    @field_validator("mqtt_client_id")
    @classmethod
    def _check_client_id(cls, v: str | None) -> str | None:
        return v or None  # set but empty (compose's ${VAR:-}) means unset

    @field_validator("timezone")
    @classmethod
    def _check_tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {v!r}") from None
        return v

    @property
    def mqtt(self) -> MqttUrl | None:
        return parse_mqtt_url(self.mqtt_url) if self.mqtt_url else None


def load_settings(**overrides: object) -> Settings:
    """Read the environment; raise :class:`ConfigError` with one readable line per mistake."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = "DOSEWATCH_" + "_".join(str(p) for p in err["loc"]).upper()
            lines.append(f"{name}: {err['msg'].removeprefix('Value error, ')}")
        raise ConfigError("; ".join(lines)) from None

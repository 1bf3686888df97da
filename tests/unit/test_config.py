"""Settings from the environment and MQTT URL parsing."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from dosewatch.config import ConfigError, MqttUrl, Settings, load_settings, parse_mqtt_url


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test may depend on DOSEWATCH_* variables the developer happens to have set."""
    for name in list(os.environ):
        if name.upper().startswith("DOSEWATCH_"):
            monkeypatch.delenv(name)
    yield


# --- parse_mqtt_url --------------------------------------------------------------------------


def test_plain_mqtt_defaults_to_1883() -> None:
    assert parse_mqtt_url("mqtt://broker.example") == MqttUrl(
        host="broker.example", port=1883, username=None, password=None, tls=False
    )


def test_mqtts_defaults_to_8883_and_tls() -> None:
    url = parse_mqtt_url("mqtts://broker.example")
    assert (url.port, url.tls) == (8883, True)


def test_explicit_port() -> None:
    assert parse_mqtt_url("mqtt://localhost:11883").port == 11883
    assert parse_mqtt_url("mqtts://localhost:1883").port == 1883
    assert parse_mqtt_url("mqtts://localhost:1883").tls is True


def test_user_and_password() -> None:
    url = parse_mqtt_url("mqtt://gateway:s3cret@broker.example:1884")
    assert (url.username, url.password, url.host, url.port) == (
        "gateway",
        "s3cret",
        "broker.example",
        1884,
    )


def test_user_and_password_are_percent_decoded() -> None:
    url = parse_mqtt_url("mqtts://us%40er:p%3Ass%2Fw%40rd%25@broker.example")
    assert url.username == "us@er"
    assert url.password == "p:ss/w@rd%"
    assert url.host == "broker.example"


def test_user_without_password() -> None:
    url = parse_mqtt_url("mqtt://gateway@broker.example")
    assert (url.username, url.password) == ("gateway", None)


def test_ipv6_host() -> None:
    url = parse_mqtt_url("mqtt://[::1]:1883")
    assert (url.host, url.port) == ("::1", 1883)


def test_host_is_lowercased_by_urlsplit() -> None:
    assert parse_mqtt_url("mqtt://Broker.Example").host == "broker.example"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://broker.example", ["scheme", "'http'"]),
        ("tcp://broker.example:1883", ["scheme", "'tcp'"]),
        ("broker.example:1883", ["scheme"]),
        ("", ["scheme", "'none'"]),
        ("mqtt://", ["no host"]),
        ("mqtt://:1883", ["no host"]),
        ("mqtt://user:pw@", ["no host"]),
        ("mqtt://broker.example:notaport", ["bad port"]),
        ("mqtt://broker.example:70000", ["bad port"]),
    ],
)
def test_bad_urls(url: str, words: list[str]) -> None:
    with pytest.raises(ValueError) as info:
        parse_mqtt_url(url)
    for word in words:
        assert word in str(info.value)


def test_redacted_hides_the_password() -> None:
    url = parse_mqtt_url("mqtts://gateway:s3cret@broker.example")
    assert url.redacted() == "mqtts://gateway:***@broker.example:8883"
    assert "s3cret" not in url.redacted()
    assert parse_mqtt_url("mqtt://broker.example").redacted() == "mqtt://broker.example:1883"


# --- load_settings ---------------------------------------------------------------------------


def test_defaults_with_an_empty_environment() -> None:
    s = load_settings()
    assert s.database_url is None and s.mqtt_url is None and s.mqtt is None
    assert (s.http_host, s.http_port, s.timezone) == ("127.0.0.1", 8000, "Europe/Stockholm")
    assert s.sweep_connections == 2


def test_good_values_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOSEWATCH_DATABASE_URL", "postgresql://dw@db.example/dosewatch")
    monkeypatch.setenv("DOSEWATCH_MQTT_URL", "mqtts://gw:pw@broker.example")
    monkeypatch.setenv("DOSEWATCH_TIMEZONE", "Australia/Sydney")
    monkeypatch.setenv("DOSEWATCH_HTTP_PORT", "8080")
    monkeypatch.setenv("DOSEWATCH_SWEEP_CONNECTIONS", "1")
    s = load_settings()
    assert s.sweep_connections == 1
    assert s.database_url == "postgresql://dw@db.example/dosewatch"
    assert s.mqtt == MqttUrl("broker.example", 8883, "gw", "pw", True)
    assert s.timezone == "Australia/Sydney"
    assert s.http_port == 8080


def test_postgres_scheme_alias_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOSEWATCH_DATABASE_URL", "postgres://localhost/dw")
    assert load_settings().database_url == "postgres://localhost/dw"


def test_empty_urls_mean_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOSEWATCH_DATABASE_URL", "")
    monkeypatch.setenv("DOSEWATCH_MQTT_URL", "")
    s = load_settings()
    assert s.database_url is None and s.mqtt_url is None and s.mqtt is None


def _error_for(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> str:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "\n" not in message  # one readable line
    return message


@pytest.mark.parametrize(
    ("name", "value", "hint"),
    [
        ("DOSEWATCH_DATABASE_URL", "mysql://localhost/dw", "postgresql://"),
        ("DOSEWATCH_DATABASE_URL", "localhost:5432", "postgresql://"),
        ("DOSEWATCH_MQTT_URL", "http://broker.example", "scheme"),
        ("DOSEWATCH_MQTT_URL", "mqtt://", "no host"),
        ("DOSEWATCH_MQTT_URL", "mqtt://broker.example:99999", "bad port"),
        ("DOSEWATCH_TIMEZONE", "Mars/Olympus_Mons", "Mars/Olympus_Mons"),
        ("DOSEWATCH_TIMEZONE", "../../etc/passwd", "time zone"),
        ("DOSEWATCH_TIMEZONE", "", "time zone"),
        ("DOSEWATCH_HTTP_PORT", "http", "integer"),
        ("DOSEWATCH_HTTP_PORT", "0", "1"),
        ("DOSEWATCH_HTTP_PORT", "65536", "65535"),
        ("DOSEWATCH_HTTP_PORT", "-1", "1"),
        ("DOSEWATCH_SWEEP_CONNECTIONS", "0", "1"),
        ("DOSEWATCH_SWEEP_CONNECTIONS", "9", "8"),
    ],
)
def test_bad_variable_is_named_in_the_error(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, hint: str
) -> None:
    message = _error_for(monkeypatch, name, value)
    assert message.startswith(f"{name}: ")
    assert hint in message
    assert "Value error," not in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DOSEWATCH_DATABASE_URL", "mysql://dw:hunter2@db.example/dw"),
        ("DOSEWATCH_MQTT_URL", "http://gw:hunter2@broker.example"),
        ("DOSEWATCH_MQTT_URL", "mqtt://gw:hunter2@broker.example:port"),
    ],
)
def test_errors_do_not_echo_passwords(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    message = _error_for(monkeypatch, name, value)
    assert name in message
    assert "hunter2" not in message


def test_every_mistake_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOSEWATCH_DATABASE_URL", "mysql://localhost/dw")
    monkeypatch.setenv("DOSEWATCH_TIMEZONE", "Nowhere/Special")
    monkeypatch.setenv("DOSEWATCH_HTTP_PORT", "nope")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    for name in ("DOSEWATCH_DATABASE_URL", "DOSEWATCH_TIMEZONE", "DOSEWATCH_HTTP_PORT"):
        assert name in message
    assert message.count("; ") == 2


def test_variable_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("dosewatch_http_port", "9000")
    assert load_settings().http_port == 9000


def test_overrides_are_validated_too() -> None:
    with pytest.raises(ConfigError, match="DOSEWATCH_HTTP_PORT"):
        load_settings(http_port=0)
    assert load_settings(timezone="UTC").timezone == "UTC"


def test_settings_is_what_load_settings_returns() -> None:
    assert isinstance(load_settings(), Settings)

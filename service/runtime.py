"""Wiring: resolve the database and broker (configured or embedded), then start the parts.

``dosewatch run`` starts every part in one process; ``gateway``, ``alarms`` and ``web`` start one
part each, for scale-out. Every part migrates on start (migrations are idempotent and serialised
by an advisory lock), so processes may start in any order.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from psycopg_pool import ConnectionPool

from dosewatch.clock import Clock, SystemClock
from dosewatch.config import ConfigError, MqttUrl, Settings, parse_mqtt_url
from dosewatch.db.gateway_sessions import installation_id
from dosewatch.db.migrate import migrate
from dosewatch.db.pool import check_database, make_pool
from dosewatch.db.reports_storage import policy_from_settings
from service.embedded import EmbeddedBroker, EmbeddedPostgres

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    database_url: str
    mqtt: MqttUrl | None
    pool: ConnectionPool
    clock: Clock
    storage_mode: str
    embedded_broker: bool = False

    @property
    def prefer_v5(self) -> bool:
        # amqtt (the embedded broker) speaks only 3.1.1; don't make every start wait to learn it.
        return self.settings.mqtt_protocol != "3.1.1" and not self.embedded_broker

    @property
    def horizon(self) -> timedelta:
        return timedelta(hours=self.settings.plan_horizon_h)


@contextlib.contextmanager
def runtime(
    settings: Settings,
    *,
    need_mqtt: bool,
    clock: Clock | None = None,
    embedded_database: str | None = None,
) -> Iterator[Runtime]:
    """Bring up what the settings describe (embedded where unset); tear it all down on exit.
    ``embedded_database``: with the embedded server, use a database of that name made afresh
    (the demo's), not the one ``dosewatch run`` keeps."""
    with contextlib.ExitStack() as stack:
        db_url = settings.database_url
        if db_url is None:
            pg = EmbeddedPostgres()
            db_url = pg.start()
            stack.callback(pg.stop)
            if embedded_database is not None:
                db_url = pg.fresh_database(db_url, embedded_database)
        check_database(db_url)
        plain = settings.storage == "postgresql"
        mode = migrate(db_url, timescale=not plain, policy=policy_from_settings(settings))
        mqtt_url = settings.mqtt
        embedded = need_mqtt and mqtt_url is None
        if embedded:
            broker = EmbeddedBroker()
            mqtt_url = parse_mqtt_url(broker.start())
            stack.callback(broker.stop)
        pool = make_pool(db_url)
        stack.callback(pool.close)
        yield Runtime(settings, db_url, mqtt_url, pool, clock or SystemClock(), mode, embedded)


def default_client_id(installation: str) -> str:
    """The client id of an installation's gateway when DOSEWATCH_MQTT_CLIENT_ID is unset: the
    same across restarts and upgrades (so the broker's persistent session, with whatever it
    queued, is found again), and another installation's never (its database has another id)."""
    return "dosewatch-gw-" + installation.replace("-", "")[:12]


def client_id(settings: Settings, pool: ConnectionPool) -> str:
    """DOSEWATCH_MQTT_CLIENT_ID when set, else :func:`default_client_id`.

    Gateways sharing a subscription all read one database, so a derived id would be the same
    for each and they would take the session from one another: they must be given their ids.
    """
    if settings.mqtt_client_id:
        return settings.mqtt_client_id
    if settings.mqtt_share_group:
        raise ConfigError(
            "DOSEWATCH_MQTT_SHARE_GROUP is set, so give each gateway its own stable "
            "DOSEWATCH_MQTT_CLIENT_ID (e.g. dosewatch-gw-1, dosewatch-gw-2): the default, "
            "derived from the database, would be the same for all of them"
        )
    with pool.connection() as conn:
        derived = default_client_id(installation_id(conn))
    log.info("MQTT client id %s (this database's; DOSEWATCH_MQTT_CLIENT_ID overrides)", derived)
    return derived


def settle_heap() -> None:
    """Take what start-up allocated (modules, settings, pools) out of the garbage collector's
    sight, just before the long-lived work starts.

    The collector's full pass walks every tracked object, and it runs whenever enough objects
    have survived since the last one; at 08:00 a sweep batch makes thousands of rows, so full
    passes over the tens of thousands of start-up objects that never die come back again and
    again. :func:`gc.freeze` moves those to a generation no pass visits (as CPython's
    documentation suggests for long-lived processes): closing 100,000 windows on one thread, the
    sweep's own CPU fell from about 20 to 18 µs an alarm. Each part of ``dosewatch run`` calls
    it again, which is harmless: what is frozen stays frozen.
    """
    gc.freeze()


def start_gateway(rt: Runtime) -> Any:
    from gateway.mqtt import Gateway

    settle_heap()
    assert rt.mqtt is not None
    gw = Gateway(
        rt.mqtt,
        rt.pool,
        rt.clock,
        client_id=client_id(rt.settings, rt.pool),
        share_group=rt.settings.mqtt_share_group,
        session_expiry_s=rt.settings.mqtt_session_expiry_s,
        prefer_v5=rt.prefer_v5,
    )
    gw.start()
    if rt.settings.gateway_metrics_port is not None:
        from gateway import metrics

        metrics.serve(rt.settings.gateway_metrics_port)
    return gw


def start_alarm_jobs(rt: Runtime) -> Any:
    from zoneinfo import ZoneInfo

    from alarms.jobs import start_scheduler
    from alarms.twilio_notifier import notifier_from_settings

    settle_heap()
    return start_scheduler(
        rt.pool,
        rt.clock,
        sweep_interval_s=rt.settings.sweep_interval_s,
        sweep_connections=rt.settings.sweep_connections,
        horizon=rt.horizon,
        notifier=notifier_from_settings(rt.settings),  # None (and a loud warning): console-only
        tz=ZoneInfo(rt.settings.timezone),
        offline_after=timedelta(minutes=rt.settings.offline_after_min),
        sip=_sip_sender(rt.settings.scaip_sip_local),
    )


def _sip_sender(local: str | None) -> Any:
    if local is None:
        return None
    from alarms.sip import SippySender

    host, _, port = local.rpartition(":")
    return SippySender(host.strip("[]"), int(port))


def serve_web(rt: Runtime) -> None:
    import uvicorn

    from dashboards.app import create_app

    token = rt.settings.twilio_auth_token
    app = create_app(
        rt.pool,
        rt.clock,
        horizon=rt.horizon,
        default_timezone=rt.settings.timezone,
        sweep_interval_s=rt.settings.sweep_interval_s,
        notifications="twilio" if rt.settings.twilio_account_sid else "console-only",
        twilio_auth_token=token.get_secret_value() if token else None,
        public_url=rt.settings.public_url,
        mqtt_password_file=rt.settings.mqtt_password_file,
    )
    from gateway import metrics

    app.mount("/metrics/gateway", metrics.asgi_app())  # the gateway's, when it runs here
    settle_heap()
    log.info(
        "web app on http://%s:%d/ (API docs at /docs)", rt.settings.http_host, rt.settings.http_port
    )
    uvicorn.run(app, host=rt.settings.http_host, port=rt.settings.http_port, log_level="warning")

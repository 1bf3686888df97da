"""The FastAPI application factory: wiring only; routes live in :mod:`dashboards.api`."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from psycopg_pool import ConnectionPool

from dashboards import answers, auth
from dashboards.api import router
from dashboards.asyncapi import router as asyncapi_router
from dashboards.auth_api import api as users_audit_router
from dashboards.auth_api import router as auth_router
from dashboards.console_api import router as console_router
from dashboards.credentials_api import router as credentials_router
from dashboards.fhir_api import router as fhir_router
from dashboards.health import router as health_router
from dashboards.identity_api import router as identity_router
from dashboards.pages import router as pages_router
from dashboards.pages import static_files
from dashboards.privacy_api import router as privacy_router
from dashboards.reports_api import router as reports_router
from dashboards.reports_pages import router as reports_pages_router
from dashboards.scaip_api import router as scaip_router
from dashboards.schedules_api import router as schedules_router
from dashboards.stream import router as stream_router
from dashboards.teams_api import router as teams_router
from dashboards.training_api import router as training_router
from dashboards.twilio_hooks import twilio_router
from dashboards.webhooks_api import document as document_webhooks
from dashboards.webhooks_api import router as webhooks_router
from dosewatch import __version__
from dosewatch.clock import Clock


def create_app(
    pool: ConnectionPool,
    clock: Clock,
    *,
    horizon: timedelta = timedelta(hours=48),
    default_timezone: str = "Europe/Stockholm",
    sweep_interval_s: float = 5.0,
    notifications: str = "console-only",
    twilio_auth_token: str | None = None,
    public_url: str | None = None,
    mqtt_password_file: str | None = None,
) -> FastAPI:
    app = FastAPI(
        title="dosewatch",
        version=__version__,
        description="Home medication dispensers: schedules, dose events, missed-dose alarms.",
    )
    app.state.pool = pool
    app.state.clock = clock
    app.state.horizon = horizon
    app.state.default_timezone = default_timezone
    app.state.sweep_interval_s = sweep_interval_s
    app.state.mqtt_password_file = mqtt_password_file  # broker credentials from the admin pages
    app.state.notifications = notifications  # "twilio" or "console-only"
    app.include_router(stream_router)  # before /alarms/{alarm_id}
    app.include_router(console_router)
    app.include_router(pages_router)
    app.include_router(reports_pages_router)
    app.mount("/static", static_files(), name="static")
    app.include_router(router)
    app.include_router(schedules_router)
    app.include_router(teams_router)
    app.include_router(privacy_router)
    app.include_router(reports_router)
    app.include_router(health_router)
    app.include_router(asyncapi_router)
    app.include_router(credentials_router)
    app.include_router(auth_router)
    app.include_router(users_audit_router)
    app.include_router(fhir_router)
    app.include_router(identity_router)
    app.include_router(webhooks_router)
    app.include_router(scaip_router)
    app.include_router(training_router)
    document_webhooks(app)
    auth.install(app)  # sessions, tokens and CSRF for everything; /api/v1 needs a caller
    app.include_router(twilio_router(twilio_auth_token, public_url))

    # 422 bodies are FastAPI's own (dashboards.fields); the OpenAPI also lists the answers no
    # route gives itself (400, 401, 403), whoever adds the route; a value the database still
    # refuses is a 422 (dashboards.answers).
    answers.install(app)

    @app.get("/healthz", include_in_schema=False)
    def _health() -> dict[str, str]:
        with pool.connection() as conn:
            conn.execute("SELECT 1")
        return {"status": "ok"}

    return app

"""The ``dosewatch`` command (typer)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from typing import Annotated, Any

import typer

from dosewatch.config import ConfigError, Settings, load_settings

app = typer.Typer(
    help="dosewatch: medication dispenser monitoring and missed-dose alarms.",
    no_args_is_help=True,
    add_completion=False,
)


def _setup(verbose: bool) -> Settings:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    for noisy in ("apscheduler", "httpx", "psycopg.pool", "pgserver", "amqtt", "transitions"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # SIGTERM (docker stop, systemd) shuts down like Ctrl-C: components stop cleanly.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    return load_settings()


def _guard(fn: Callable[[], Any]) -> None:
    """Run ``fn``; a configuration problem becomes one line on stderr and exit status 2."""
    try:
        fn()
    except ConfigError as exc:
        typer.echo(f"dosewatch: error: {exc}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        typer.echo("dosewatch: stopped", err=True)


Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="debug logging")]


def _wait_forever() -> None:
    threading.Event().wait()


@app.command()
def migrate(verbose: Verbose = False) -> None:
    """Apply database migrations (also done on every start)."""

    def go() -> None:
        from service.runtime import runtime

        with runtime(_setup(verbose), need_mqtt=False) as rt:
            typer.echo(f"migrations applied; storage mode: {rt.storage_mode}")

    _guard(go)


@app.command()
def run(verbose: Verbose = False) -> None:
    """Run everything in one process: gateway, alarm jobs and the web app."""

    def go() -> None:
        from service.runtime import runtime, serve_web, start_alarm_jobs, start_gateway

        with runtime(_setup(verbose), need_mqtt=True) as rt:
            gw = start_gateway(rt)
            jobs = start_alarm_jobs(rt)
            try:
                serve_web(rt)
            finally:
                jobs.shutdown(wait=False)
                gw.stop()

    _guard(go)


@app.command()
def gateway(verbose: Verbose = False) -> None:
    """Run only the MQTT gateway (scale-out)."""

    def go() -> None:
        from service.runtime import runtime, start_gateway

        with runtime(_setup(verbose), need_mqtt=True) as rt:
            gw = start_gateway(rt)
            try:
                _wait_forever()
            finally:
                gw.stop()

    _guard(go)


@app.command()
def alarms(verbose: Verbose = False) -> None:
    """Run only the alarm jobs (scale-out; any number may run)."""

    def go() -> None:
        from service.runtime import runtime, start_alarm_jobs

        with runtime(_setup(verbose), need_mqtt=False) as rt:
            jobs = start_alarm_jobs(rt)
            try:
                _wait_forever()
            finally:
                jobs.shutdown(wait=False)

    _guard(go)


@app.command()
def web(verbose: Verbose = False) -> None:
    """Run only the web app and API (scale-out)."""

    def go() -> None:
        from service.runtime import runtime, serve_web

        with runtime(_setup(verbose), need_mqtt=False) as rt:
            serve_web(rt)

    _guard(go)


@app.command()
def demo(verbose: Verbose = False) -> None:
    """Everything, plus the Umeå fleet (30 days of history, then live) and 3 patients whose
    dose is due at once: a missed-dose alarm appears within about 3 minutes."""

    def go() -> None:
        from service.demo import run_demo

        run_demo(_setup(verbose))

    _guard(go)


user_app = typer.Typer(help="Users who sign in to the web app.", no_args_is_help=True)
app.add_typer(user_app, name="user")
token_app = typer.Typer(help="API tokens for machine clients.", no_args_is_help=True)
app.add_typer(token_app, name="token")

RoleOpt = Annotated[str, typer.Option("--role", help="nurse, pharmacist, manager or admin")]
TeamOpt = Annotated[
    str | None,
    typer.Option("--team", help="team id or exact name (required for nurses and pharmacists)"),
]


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Option("--username", help="the sign-in name")],
    name: Annotated[str, typer.Option("--name", help="the name shown to others")],
    role: RoleOpt,
    team: TeamOpt = None,
    language: Annotated[str, typer.Option("--language", help="sv or en")] = "sv",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from standard input")
    ] = False,
    verbose: Verbose = False,
) -> None:
    """Create a user (the first admin too: --role admin). Asks for the password."""

    def go() -> None:
        from service.accounts import create_user

        settings = _setup(verbose)
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = typer.prompt("password", hide_input=True, confirmation_prompt=True, err=True)
        row = create_user(settings, username, name, role, team, language, password)
        typer.echo(f"user {row['username']} ({row['role']}) created, id {row['id']}", err=True)

    _guard(go)


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option("--name", help="what the token is for")],
    role: RoleOpt,
    team: TeamOpt = None,
    verbose: Verbose = False,
) -> None:
    """Create an API token and print it, alone, on standard output (it is shown only once).
    Send it as ``Authorization: Bearer <token>``."""

    def go() -> None:
        from service.accounts import create_token

        typer.echo(create_token(_setup(verbose), name, role, team))

    _guard(go)


dispenser_app = typer.Typer(help="Dispenser administration.", no_args_is_help=True)
app.add_typer(dispenser_app, name="dispenser")
from service.sim_cli import app as sim_app  # noqa: E402  (the fleet simulator's commands)

app.add_typer(sim_app, name="sim")
from service.training_cli import app as training_app  # noqa: E402  (training mode)

app.add_typer(training_app, name="training")


@dispenser_app.command("provision")
def dispenser_provision(
    dispenser_id: Annotated[str, typer.Argument(help="the dispenser id, e.g. DSP-000123")],
    password_file: Annotated[
        str | None,
        typer.Option(
            "--password-file",
            help="Mosquitto password file (default: DOSEWATCH_MQTT_PASSWORD_FILE)",
        ),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="issue a new password if it has one already")
    ] = False,
) -> None:
    """Create a dispenser's broker credentials; print the generated password once."""

    def go() -> None:
        from pathlib import Path

        from dosewatch.broker_credentials import CredentialError, provision

        path = password_file or load_settings().mqtt_password_file
        if not path:
            raise ConfigError(
                "no password file: pass --password-file or set DOSEWATCH_MQTT_PASSWORD_FILE"
            )
        try:
            password = provision(Path(path), dispenser_id, replace=replace)
        except (CredentialError, OSError) as exc:
            raise ConfigError(str(exc)) from None
        typer.echo(
            f"{dispenser_id}: broker user {dispenser_id} written to {path}.\n"
            f"password (shown once, put it on the device now): {password}\n"
            "reload the broker to use it (SIGHUP), e.g.\n"
            "  docker compose -f deploy/compose.yaml kill -s SIGHUP broker"
        )

    _guard(go)


if __name__ == "__main__":
    app()

"""``dosewatch sim …``: fleet history, live runs and reconciliation (a typer sub-app)."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="The dispenser fleet simulator.", no_args_is_help=True)
log = logging.getLogger(__name__)

FleetOpt = Annotated[str, typer.Option("--fleet", help="a fleet file, or demo / umea")]
TruthOpt = Annotated[
    Path, typer.Option("--truth", help="where the run's ground truth is written / read")
]


def _settings(verbose: bool):  # type: ignore[no-untyped-def]
    from dosewatch.config import load_settings

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "psycopg.pool", "alarms.escalation"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return load_settings()


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"dosewatch sim: error: {message}", err=True)
    return typer.Exit(code)


@app.command()
def history(
    days: Annotated[int, typer.Option("--days", min=1, max=365, help="how many past days")] = 30,
    fleet: FleetOpt = "umea",
    truth: TruthOpt = Path("sim-truth.json"),
    allow_real_patients: Annotated[
        bool, typer.Option("--allow-real-patients", help="add history beside real patients")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Fill the configured database with DAYS past days of the fleet's life, made by the
    service's own ingest and alarm code under a simulated clock."""
    from dispenser_sim.profiles import FleetError, load_fleet
    from dispenser_sim.staff import ApiError
    from dosewatch.config import ConfigError
    from service.runtime import runtime
    from service.sim_history import HistoryRefused, run_history

    try:
        spec = load_fleet(fleet)
        with runtime(_settings(verbose), need_mqtt=False) as rt:
            now = datetime.now(UTC).replace(second=0, microsecond=0)
            result = run_history(
                rt.pool, spec, days, now=now, truth_path=truth, allow_foreign=allow_real_patients
            )
            rate, counts = _adherence(rt.pool, result.dispensers, result.start, now)
    except (FleetError, ConfigError, HistoryRefused, ApiError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(
        f"{len(result.dispensers)} dispensers, {days} days from {result.start:%Y-%m-%d %H:%M} UTC;"
        f" slots {dict(sorted(counts.items()))}; adherence {rate:.2%}. Truth: {truth}"
    )


def _adherence(pool, ids, start, end):  # type: ignore[no-untyped-def]
    from dispenser_sim.staff import adherence_from_slot_states

    with _api(pool, None, None) as api:
        return adherence_from_slot_states(api, ids, start, end)


class _api:
    """The public API: a running service (``--api`` and ``--token``) or, by default, the app
    in process over the configured database with a token made for this check."""

    def __init__(self, pool, url: str | None, token: str | None) -> None:  # type: ignore[no-untyped-def]
        self.pool, self.url, self.token = pool, url, token

    def __enter__(self):  # type: ignore[no-untyped-def]
        from dispenser_sim.staff import Api

        if self.url:
            import httpx

            self._http = httpx.Client(
                base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
            )
            return Api(self._http)
        from fastapi.testclient import TestClient

        from dashboards.app import create_app
        from dosewatch.clock import SystemClock
        from dosewatch.db import users as user_sql

        with self.pool.connection() as conn, conn.transaction():
            _, secret = user_sql.create_token(
                conn, name="dosewatch sim check", role="admin", team_id=None,
                now=datetime.now(UTC),
            )  # fmt: skip
        self._http = TestClient(
            create_app(self.pool, SystemClock()), headers={"Authorization": f"Bearer {secret}"}
        )
        return Api(self._http)

    def __exit__(self, *_: object) -> None:
        self._http.close()


@app.command()
def check(
    truth: TruthOpt = Path("sim-truth.json"),
    api_url: Annotated[
        str | None, typer.Option("--api", help="a running service, e.g. http://127.0.0.1:8000")
    ] = None,
    token: Annotated[str | None, typer.Option("--token", help="an admin API token")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Compare the run's ground truth with what the service concluded (public API only);
    print the differences; exit 1 if there are any."""
    from dispenser_sim.reconcile import check as reconcile
    from dispenser_sim.reconcile import table
    from dispenser_sim.staff import ApiError
    from dispenser_sim.truth import Truth
    from dosewatch.config import ConfigError
    from service.runtime import runtime

    if api_url and not token:
        raise _fail("--api needs --token (an admin API token: dosewatch token create)")
    try:
        recorded = Truth.load(truth)
    except (OSError, ValueError, KeyError) as exc:
        raise _fail(f"cannot read the truth file {truth}: {exc}") from None
    try:
        with (
            runtime(_settings(verbose), need_mqtt=False) as rt,
            _api(rt.pool, api_url, token) as api,
        ):
            diffs = reconcile(api, recorded)
    except (ConfigError, ApiError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(table(diffs))
    sys.stdout.flush()
    if diffs:
        raise typer.Exit(1)


@app.command()
def run(
    fleet: FleetOpt = "demo",
    truth: TruthOpt = Path("sim-truth.json"),
    hours: Annotated[float, typer.Option("--hours", help="how long to run (wall clock)")] = 24.0,
    passwords: Annotated[
        Path | None,
        typer.Option("--passwords", help="a file of 'dispenser:password' lines (broker users)"),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the fleet live on the wall clock through the configured broker, as real MQTT
    clients, until --hours pass or Ctrl-C; then write the truth."""
    from dispenser_sim.profiles import FleetError, load_fleet
    from dosewatch.config import ConfigError
    from service.sim_live import run_live

    try:
        spec = load_fleet(fleet)
        creds = _passwords(passwords) if passwords else None
        run_live(_settings(verbose), spec, timedelta(hours=hours), truth, creds)
    except (FleetError, ConfigError, OSError) as exc:
        raise _fail(str(exc)) from None


def _passwords(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if ":" in line:
            name, password = line.split(":", 1)
            out[name.strip()] = password.strip()
    return out

"""``dosewatch training``: set up a practice team and trigger practice alarms from the shell.

The same use cases as the admin pages and the API (:mod:`dosewatch.usecases.training`), audited
as the ``cli`` system actor. A refusal (a real team's dispenser, an alarm of that kind still
unresolved, a phone that belongs to a real person) is one line on stderr and exit status 1.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

import typer

from dosewatch.config import load_settings
from dosewatch.db import DbConn
from dosewatch.db import audit as audit_sql
from dosewatch.domain.training_trigger import TriggerKind
from dosewatch.usecases import training

app = typer.Typer(
    help="Training mode: practice alarms on a training team, never paging a real number.",
    no_args_is_help=True,
)


@contextmanager
def _transaction() -> Iterator[tuple[DbConn, datetime]]:
    from service.runtime import runtime

    with (
        runtime(load_settings(), need_mqtt=False) as rt,
        rt.pool.connection() as conn,
        conn.transaction(),
    ):
        yield conn, rt.clock.now()


def _audit(conn: DbConn, now: datetime, object_type: str, object_id: Any, **detail: Any) -> None:
    audit_sql.record(
        conn,
        audit_sql.Entry(
            at=now, actor_kind="system", actor_id=None, actor_name="cli", actor_role=None,
            action="create", object_type=object_type, object_id=str(object_id), detail=detail,
        ),
    )  # fmt: skip


def _refused(exc: Exception) -> typer.Exit:
    typer.echo(f"dosewatch: error: {exc}", err=True)
    return typer.Exit(1)


@app.command("trigger")
def trigger(
    dispenser: Annotated[str, typer.Option("--dispenser", help="a training team's dispenser id")],
    kind: Annotated[TriggerKind, typer.Option("--kind", help="what to practise")],
) -> None:
    """Open a practice alarm on a training dispenser, exactly as the real cause would."""
    from service.cli import _guard

    def go() -> None:
        with _transaction() as (conn, now):
            try:
                alarm_id = training.trigger(conn, dispenser, kind, now, "cli")
            except (training.NotFound, training.Refused) as exc:
                raise _refused(exc) from None
            _audit(conn, now, "alarm", alarm_id, training=kind.value, dispenser=dispenser)
        typer.echo(f"training alarm {alarm_id} ({kind.value}) opened on {dispenser}")

    _guard(go)


@app.command("setup")
def setup(
    phone: Annotated[
        list[str],
        typer.Option("--phone", help="a practice phone (E.164); one nurse on shift per phone"),
    ],
    name: Annotated[str, typer.Option("--name", help="the team's name")] = "Övning",
    patients: Annotated[int, typer.Option("--patients", min=1, max=20)] = 3,
    hours: Annotated[int, typer.Option("--hours", min=1, max=24, help="the shift")] = 12,
) -> None:
    """Create a training team: a nurse on shift per practice phone, and training patients with a
    dispenser each (no schedule: their alarms come from `dosewatch training trigger`)."""
    from service.cli import _guard

    def go() -> None:
        with _transaction() as (conn, now):
            try:
                made = training.set_up(conn, name, phone, patients, now, hours)
            except training.Refused as exc:
                raise _refused(exc) from None
            _audit(conn, now, "team", made.team_id, training=True, name=name)
        typer.echo(f"training team {made.team_id} ({name}): nurses {made.nurse_ids}")
        for dispenser_id in made.dispenser_ids:
            typer.echo(f"  dispenser {dispenser_id}")
        typer.echo(f"try: dosewatch training trigger --dispenser {made.dispenser_ids[0]}"
                   " --kind missed_dose")  # fmt: skip

    _guard(go)

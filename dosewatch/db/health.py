"""SQL for the self-watch: when each periodic job last succeeded, and the oldest overdue slot."""

from __future__ import annotations

from datetime import datetime

from dosewatch.db import DbConn


def record_run(conn: DbConn, job: str, now: datetime) -> None:
    conn.execute(
        "INSERT INTO job_runs (job, last_ok_at, runs) VALUES (%s, %s, 1)"
        " ON CONFLICT (job) DO UPDATE SET last_ok_at = GREATEST(job_runs.last_ok_at,"
        " excluded.last_ok_at), runs = job_runs.runs + 1",
        (job, now),
    )


def last_runs(conn: DbConn) -> dict[str, datetime]:
    return {r["job"]: r["last_ok_at"] for r in conn.execute("SELECT job, last_ok_at FROM job_runs")}


def oldest_overdue_slot(conn: DbConn, now: datetime) -> datetime | None:
    """The window end of the oldest slot still pending after its window closed: the sweep's
    backlog. Uses the partial index on pending slots."""
    row = conn.execute(
        "SELECT min(window_end) AS oldest FROM dose_slots"
        " WHERE state = 'pending' AND window_end <= %s",
        (now,),
    ).fetchone()
    return None if row is None else row["oldest"]

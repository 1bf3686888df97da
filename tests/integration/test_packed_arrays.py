"""dosewatch.db.packed: the arrays it builds are the ones psycopg's own dumper sends."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest

from dosewatch.db import packed

CASES: list[tuple[str, list[Any]]] = [
    ("bigint", [1, -1, 0, 2**63 - 1, -(2**63), 1, None, 1]),
    ("bigint", list(range(3000))),
    ("int", [0, 7, -(2**31), 2**31 - 1, None]),
    ("text", ["DSP-1", "", "Åsa Öberg ✓", 'a,b {c} "d" \\e', None, "DSP-1"]),
    ("bytea", [b"\xff\xfe", b"", b"\x00nul", None, b"x" * 9000, b"\xff\xfe"]),
    (
        "timestamptz",
        [
            datetime(2026, 11, 23, 7, 0, 0, 123456, tzinfo=UTC),
            datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            datetime(2026, 3, 29, 2, 30, tzinfo=timezone(timedelta(hours=2))),
            None,
        ],
    ),
    ("bigint", []),
    ("text", []),
    ("text", [None, None]),
]


@pytest.mark.parametrize(("sql_type", "values"), CASES)
def test_the_server_reads_the_same_array(
    conn: psycopg.Connection, sql_type: str, values: list[Any]
) -> None:
    row = conn.execute(
        f"SELECT %b::{sql_type}[] AS mine, %b::{sql_type}[] AS psycopgs,"
        f" %b::{sql_type}[] IS NOT DISTINCT FROM %b::{sql_type}[] AS same",
        (packed.array(sql_type, values), values, packed.array(sql_type, values), values),
    ).fetchone()
    assert row is not None
    assert row["mine"] == values and row["same"]


def test_a_value_out_of_range_is_refused_not_wrapped() -> None:
    with pytest.raises(struct.error):
        packed.array("int", [2**31])


def test_a_naive_timestamp_is_refused() -> None:
    with pytest.raises(TypeError):
        packed.array("timestamptz", [datetime(2026, 11, 23, 7, 0)])

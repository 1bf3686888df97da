"""One-dimensional PostgreSQL arrays in binary form, built at C speed for set-based writes.

psycopg dumps a Python list element by element in Python (0.3–1 µs an element); opening 2,000
alarms sends some 50,000 elements, and under the GIL that time is serial for every connection
of the process. Here each distinct value is encoded once and the array is one ``bytes.join``.
The result is sent as a binary parameter of the array type (``%b``), exactly what the server
would receive from psycopg's own dumper (``tests/integration/test_packed_arrays.py`` holds the
two to the same values).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format

_NULL = struct.pack(">i", -1)
_INT8 = struct.Struct(">iq")
_INT4 = struct.Struct(">ii")
_LEN = struct.Struct(">i")
_HEADER = struct.Struct(">iiIii")  # ndim, has nulls, element oid, length, lower bound
_EMPTY = struct.Struct(">iiI")
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class Packed:
    """An array already in PostgreSQL's binary form, with its array type's oid."""

    __slots__ = ("data", "oid")

    def __init__(self, data: bytes, oid: int) -> None:
        self.data, self.oid = data, oid


class _PackedDumper(Dumper):
    format = Format.BINARY

    def get_key(self, obj: Any, format: Any) -> Any:
        return (type(obj), obj.oid)  # one dumper per array type

    def upgrade(self, obj: Any, format: Any) -> Dumper:
        dumper = _PackedDumper(type(obj))
        dumper.oid = obj.oid
        return dumper

    def dump(self, obj: Any) -> bytes:
        return obj.data  # type: ignore[no-any-return]


psycopg.adapters.register_dumper(Packed, _PackedDumper)


def _bytea(v: bytes) -> bytes:
    return _LEN.pack(len(v)) + v


def _text(v: str) -> bytes:
    return _bytea(v.encode())


def _timestamptz(v: datetime) -> bytes:
    return _INT8.pack(8, (v - _PG_EPOCH) // _MICROSECOND)


# SQL type name: (element oid, array oid, encoder of one element with its length)
_TYPES: dict[str, tuple[int, int, Callable[[Any], bytes]]] = {
    "bigint": (20, 1016, lambda v: _INT8.pack(8, v)),
    "bytea": (17, 1001, _bytea),
    "int": (23, 1007, lambda v: _INT4.pack(4, v)),
    "text": (25, 1009, _text),
    "timestamptz": (1184, 1185, _timestamptz),
}


def array(sql_type: str, values: Sequence[Any]) -> Packed:
    """``values`` (None for NULL) as a ``sql_type[]`` parameter."""
    elem_oid, array_oid, encode = _TYPES[sql_type]
    if not values:
        return Packed(_EMPTY.pack(0, 0, elem_oid), array_oid)
    encoded = {v: _NULL if v is None else encode(v) for v in set(values)}
    body = b"".join(map(encoded.__getitem__, values))
    header = _HEADER.pack(1, int(None in encoded), elem_oid, len(values), 1)
    return Packed(header + body, array_oid)

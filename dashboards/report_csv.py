"""CSV exports of the report tables: UTF-8 with a BOM, ``;`` as the separator, decimal comma.

That is what Excel set to Swedish opens directly (Swedish characters intact, numbers as numbers);
``decimal=point`` gives a decimal point for scripts. Nested figures are flattened into columns.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any, Literal

from fastapi.responses import Response

Decimal = Literal["comma", "point"]
FIGURE_COLUMNS = (
    "expected",
    "taken",
    "taken_late",
    "missed",
    "unknown",
    "suspended",
    "pending",
    "taking_adherence_pct",
    "timing_adherence_pct",
    "correct_dosing_days",
    "monitored_days",
    "correct_dosing_days_pct",
    "patients",
)
DURATION_COLUMNS = ("count", "median_s", "p90_s")


def flatten(row: dict[str, Any]) -> dict[str, Any]:
    """``figures`` and duration objects become columns of their own."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key == "figures" and isinstance(value, dict):
            out.update({c: value.get(c) for c in FIGURE_COLUMNS})
        elif isinstance(value, dict):
            out.update({f"{key}_{k}": v for k, v in value.items()})
        elif isinstance(value, list):
            out[key] = ", ".join(str(v) for v in value)
        else:
            out[key] = value
    return out


def _cell(value: Any, decimal: Decimal) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(round(value, 4))
        return text.replace(".", ",") if decimal == "comma" else text
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def render(rows: Iterable[dict[str, Any]], decimal: Decimal = "comma") -> str:
    flat = [flatten(r) for r in rows]
    header: list[str] = []
    for r in flat:
        header.extend(k for k in r if k not in header)
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    for r in flat:
        writer.writerow([_cell(r.get(k), decimal) for k in header])
    return "\ufeff" + buf.getvalue()


def response(rows: Iterable[dict[str, Any]], filename: str, decimal: Decimal) -> Response:
    return Response(
        render(rows, decimal).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


CSV_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/csv": {"schema": {"type": "string"}}},
        "description": "UTF-8 with a BOM, ';' as the separator, decimal comma (decimal=point:"
        " a decimal point); one header row",
    }
}

"""Reading the API's 422 answers in tests: FastAPI's standard shape, ``{"detail": [...]}``."""

from __future__ import annotations

from typing import Any


def problems(response: Any) -> str:
    """A 422's errors as one line, ``body.name: Field required; ...``, after checking the body
    has the documented shape: every error with its location, message and type."""
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail, detail
    for error in detail:
        assert isinstance(error["loc"], list) and error["msg"] and error["type"], error
    return "; ".join(".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in detail)

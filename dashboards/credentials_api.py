"""Broker credentials for a dispenser, from the admin pages (the same as the CLI's
``dosewatch dispenser provision``).

The password is generated here, written to the Mosquitto password file as a PBKDF2 hash, and
returned exactly once: nobody can read it back later, only issue a new one (``replace``).
Mosquitto reads the file again on SIGHUP; the deploy guide says how.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict

from dashboards.access import Admin
from dashboards.deps import Db, dispenser_or_404
from dashboards.fields import DispenserPath, errors, invalid
from dosewatch.broker_credentials import CredentialError, provision

router = APIRouter(prefix="/api/v1")


class CredentialsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    replace: bool = False


class Credentials(BaseModel):
    username: str
    password: str
    password_file: str


@router.post(
    "/dispensers/{dispenser_id}/broker-credentials",
    status_code=201,
    response_model=Credentials,
    responses=errors(404, 409, 503),
)
def create_credentials(
    dispenser_id: DispenserPath,
    request: Request,
    conn: Db,
    acc: Admin,
    body: CredentialsIn | None = None,
) -> dict[str, str]:
    dispenser_or_404(conn, dispenser_id)
    path = request.app.state.mqtt_password_file
    if not path:
        raise HTTPException(503, "no broker password file: set DOSEWATCH_MQTT_PASSWORD_FILE")
    replace = body.replace if body else False
    try:
        password = provision(Path(path), dispenser_id, replace=replace)
    except CredentialError as exc:
        if "already" in str(exc):
            raise HTTPException(409, str(exc)) from None
        invalid(("path", "dispenser_id"), str(exc))
    except OSError as exc:
        raise HTTPException(503, f"cannot write the broker password file: {exc}") from None
    change = "replaced" if replace else "created"
    acc.log("update", "dispenser", dispenser_id, broker_credentials=change)
    return {"username": dispenser_id, "password": password, "password_file": path}

"""Broker credentials for dispensers: Mosquitto's password file, written without the C tool.

In the core because three adapters use it: the CLI and the admin API provision devices, and
the test broker (dispenser_sim) writes its users with it.

A line is ``username:$7$<iterations>$<salt>$<hash>``: PBKDF2-HMAC-SHA512 over the password
with a random 12-byte salt, both base64, exactly what ``mosquitto_passwd`` (2.x) writes and
Mosquitto reads. The ACL (``deploy/mosquitto/acl``) relies on username = dispenser id.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from dosewatch.domain.protocol import DISPENSER_ID_RE

# mosquitto_passwd's own default. The passwords made here are 128 random bits, so the cost
# factor protects nothing that guessing could reach; a higher one would only slow every
# device's connect on the broker.
ITERATIONS = 101
RESERVED_USERS = frozenset({"gateway"})


class CredentialError(Exception):
    """One line saying what is wrong (bad id, already provisioned, unwritable file)."""


def hash_password(password: str, *, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, hashed: str) -> bool:
    try:
        _, kind, iterations, salt, digest = hashed.split("$")
        if kind != "7":
            return False
        raw_salt = base64.b64decode(salt)
        got = hashlib.pbkdf2_hmac("sha512", password.encode(), raw_salt, int(iterations))
    except ValueError:
        return False
    return secrets.compare_digest(base64.b64encode(got).decode(), digest)


def new_password() -> str:
    return secrets.token_hex(16)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def set_user(path: Path, username: str, password: str, *, replace: bool = False) -> None:
    """Add (or with ``replace``, change) ``username`` in the password file, atomically.

    The file is created with mode 0600 if missing; an existing file keeps its mode and, when
    run as root, its owner. Other lines are kept as they are.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        kept = [ln for ln in lines if ln.split(":", 1)[0] != username]
        if len(kept) != len(lines) and not replace:
            raise CredentialError(
                f"{username} already has broker credentials in {path}; "
                "use --replace to issue a new password"
            )
        kept.append(f"{username}:{hash_password(password)}")
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("\n".join(kept) + "\n")
            f.flush()
            os.fsync(f.fileno())
        if path.exists():  # keep the file's mode and (when allowed) owner: the broker reads it
            st = path.stat()
            os.chmod(tmp, st.st_mode & 0o777)
            with contextlib.suppress(PermissionError):
                os.chown(tmp, st.st_uid, st.st_gid)
        os.replace(tmp, path)


def provision(path: Path, dispenser_id: str, *, replace: bool = False) -> str:
    """Create broker credentials for a dispenser; return the generated password (shown once)."""
    if not DISPENSER_ID_RE.fullmatch(dispenser_id):
        raise CredentialError(f"{dispenser_id!r} is not a dispenser id (3-64 of A-Z a-z 0-9 - _)")
    if dispenser_id.lower() in RESERVED_USERS:
        raise CredentialError(f"{dispenser_id!r} is reserved for the server; pick another id")
    password = new_password()
    set_user(path, dispenser_id, password, replace=replace)
    return password

"""The device process of bench/fleet: every virtual dispenser in this one process.

``python -m bench.fleet_devices SPEC.json OUT_DIR``. SPEC names the broker (a loopback port),
each dispenser's password and the rush (:class:`dispenser_sim.crowd.Rush`). The process prints
``READY <s to connect all> <s until all configured> <last window close>`` once every device
is connected and has its config, acts the rush, disconnects, and writes ``truth.json`` (what
the devices really did) and ``published.json`` (each message and when it was handed to the
socket) into OUT_DIR. It stops by itself: the rush ends with the last window plus a tail,
and every wait has a bound.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from dataclasses import asdict
from pathlib import Path

from dispenser_sim.crowd import Crowd, CrowdError, Rush


def raise_fd_limit(need: int) -> int:
    """One descriptor per connection: lift the soft limit to the hard one (or say it is low)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if soft < need:
        raise SystemExit(f"fleet_devices: RLIMIT_NOFILE hard limit {hard} < {need} needed")
    return soft


async def _main(spec: dict[str, object], out: Path) -> int:
    rush = Rush(**spec["rush"])  # type: ignore[arg-type]
    credentials: dict[str, str] = spec["credentials"]  # type: ignore[assignment]
    host, port = str(spec["host"]), int(spec["port"])  # type: ignore[call-overload]
    if not host.startswith("127."):
        raise SystemExit("fleet_devices: loopback brokers only")
    crowd = Crowd(host, port, credentials, rush, str(spec["run_id"]))
    try:
        connected, configured = await crowd.connect_all()
        close = crowd.last_close().isoformat()
        print(f"READY {connected:.2f} {configured:.2f} {close}", flush=True)
        await crowd.run_rush()
    except CrowdError as exc:
        print(f"FAILED {exc}", flush=True)
        return 2
    finally:
        if crowd.truth.end is not None:
            crowd.truth.save(out / "truth.json")
        (out / "published.json").write_text(
            json.dumps(
                {
                    "published": [asdict(p) for p in crowd.published],
                    "acked": crowd.acked,
                    "dropped": crowd.dropped,
                    "refused": crowd.refused,
                    "missing": sorted(crowd.missing),
                }
            ),
            encoding="utf-8",
        )
    return 0


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    raise_fd_limit(len(spec["credentials"]) + 100)
    started = time.monotonic()
    code = asyncio.run(_main(spec, Path(sys.argv[2])))
    print(f"DONE {time.monotonic() - started:.1f}", flush=True)
    raise SystemExit(code)


if __name__ == "__main__":
    main()
